from django.core.management import call_command
from django.db import migrations


def cache_table_create(apps, schema_editor):
    """The table of settings.CACHES' database cache (createcachetable skips
    a table that exists), so `migrate` is all a new database needs."""
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("config", "0004_sweep_state")]

    operations = [migrations.RunPython(cache_table_create, migrations.RunPython.noop)]
