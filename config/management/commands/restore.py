from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config import backup


class Command(BaseCommand):
    help = (
        "Restore a dump made by `backup` into an existing, empty database on the same server "
        "(create it first, e.g. createdb accord_restored); then point DATABASE_URL at it."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--into", required=True, help="The empty database to restore into.")

    def handle(self, *args, path, into, **options):
        try:
            backup.restore(path, database=into)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Restored {path} into {into}.")
