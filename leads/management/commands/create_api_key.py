from django.core.management.base import BaseCommand

from leads.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create an ingestion API key and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what uses the key, e.g. 'Marketing automation'.")
        parser.add_argument("--rate-limit", type=int, default=1200, help="Requests per minute.")

    def handle(self, *args, name, rate_limit, **options):
        api_key, raw_key = api_key_create(name=name, rate_limit_per_minute=rate_limit)
        self.stderr.write(f"Created API key “{api_key.name}” ({api_key.prefix}…). Store it now:")
        self.stdout.write(raw_key)
