from django.db import migrations, models


class Migration(migrations.Migration):
    """The pipeline boards page each column by (stage_changed_at, id), newest
    first; these indexes serve that order and the per-column counts."""

    dependencies = [
        ("leads", "0007_touchpoint_created_idx"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("stage__in", ["mql", "sal", "sql", "recycled"])),
                fields=["stage", "-stage_changed_at", "-id"],
                name="lead_board_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="opportunity",
            index=models.Index(fields=["stage", "-stage_changed_at", "-id"], name="opp_board_idx"),
        ),
    ]
