"""Recompute every reporting table from scratch (attribution, lead funnel,
stage flow), then cache the default views' figures. Safe to run at any time;
refreshes wait while it runs."""

import time

from django.core.management.base import BaseCommand

from reporting.rollups import reporting_rebuild
from reporting.services import figures_warm


class Command(BaseCommand):
    help = "Recompute stored attribution, lead funnel facts and the stage-flow rollup."

    def handle(self, *args, **options):
        self.stdout.write("Rebuilding the reporting tables…")
        result = reporting_rebuild(stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt in {result.seconds:.1f} s: {result.leads} leads, "
                f"{result.stage_flow_rows} stage-flow rows, {result.opportunities} opportunities, "
                f"{result.credit_rows} credit rows."
            )
        )
        started = time.monotonic()
        figures_warm()
        self.stdout.write(f"Default views' figures cached in {time.monotonic() - started:.1f} s.")
