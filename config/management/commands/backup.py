from pathlib import Path

from django.core.management.base import BaseCommand

from config import backup


class Command(BaseCommand):
    help = "Dump the database to a file (pg_dump custom format). Restore with `restore`."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path, **options):
        backup.backup(path)
        self.stdout.write(f"Backed up to {path} ({path.stat().st_size:,} bytes).")
