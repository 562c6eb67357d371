from django.db import migrations


def create_role_groups(apps, schema_editor):
    from config.roles import groups_create

    groups_create(group_model=apps.get_model("auth", "Group"))


class Migration(migrations.Migration):
    dependencies = [
        ("config", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
