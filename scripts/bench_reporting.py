#!/usr/bin/env python
"""Server time of the shared dashboard and the attribution page at scale.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/accord_reporting_bench \
        .venv/bin/python scripts/bench_reporting.py [--rounds 15] [--rebuild] \
        [--late-touchpoints 1000]

Runs in process with Django's test client (force_login; no network, no
gunicorn), so the time is the server's: middleware, queries, templates. Each
page is first requested cold three times, each time just after its cached
figures were made stale (as a refresh that changed the reporting tables
does; the median is reported), then once to warm up, then --rounds times;
reports p50, p95 and max in milliseconds and the number of queries. --rebuild first runs the full
rebuild of the reporting tables (and reports its time). --late-touchpoints N
inserts N touchpoints dated before the deals of their leads (as if they
arrived late), times the incremental refresh that re-attributes those
deals, and checks it equals a recomputation. Point it at a benchmark
database (scripts/bench_data.py), never at one you care about.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 500

PAGES = [
    ("Dashboard, this month", "/reporting/?period=month"),
    ("Dashboard, last month", "/reporting/?period=last_month"),
    ("Dashboard, this quarter", "/reporting/?period=quarter"),
    ("Dashboard, last quarter", "/reporting/?period=last_quarter"),
    ("Dashboard, last 90 days", "/reporting/?period=90d"),
    ("Dashboard, last 12 months", "/reporting/?period=year"),
    ("Dashboard, custom 2 years", "/reporting/?period=custom&start={two_years_ago}&end={today}"),
    ("Dashboard, quarter, enterprise", "/reporting/?period=quarter&segment=enterprise"),
    ("Dashboard, quarter, one team", "/reporting/?period=quarter&team={team}"),
    ("Dashboard, 12 months, SMB, one team", "/reporting/?period=year&segment=smb&team={team}"),
    ("Home (dashboard + cards)", "/?period=quarter"),
    ("Dashboard fragment (htmx), 90 days", "/reporting/?period=90d#htmx"),
    ("Attribution, linear vs W-shaped, quarter", "/reporting/attribution/?period=quarter"),
    ("Attribution, first vs time decay, 12 months",
     "/reporting/attribution/?period=year&model_a=first_touch&model_b=time_decay"),
    ("Attribution, U-shaped vs full path, custom 2 years",
     "/reporting/attribution/?period=custom&start={two_years_ago}&end={today}"
     "&model_a=u_shaped&model_b=full_path"),
    ("Attribution, last touch vs linear, enterprise, one team",
     "/reporting/attribution/?period=90d&segment=enterprise&team={team}"
     "&model_a=last_touch&model_b=linear"),
]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--late-touchpoints", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from leads.models import Lead, Opportunity, Team, Touchpoint
    from reporting.figure_cache import figures_invalidate
    from reporting.rollups import reporting_rebuild

    print(
        f"Database {connection.settings_dict['NAME']}: {Lead.objects.count():,} leads, "
        f"{Touchpoint.objects.count():,} touchpoints, {Opportunity.objects.count():,} deals"
    )
    if args.rebuild:
        result = reporting_rebuild()
        print(
            f"Full rebuild: {result.seconds:.1f} s ({result.opportunities:,} deals, "
            f"{result.credit_rows:,} credit rows, {result.leads:,} lead funnels)"
        )
    if args.late_touchpoints:
        late_touchpoints(args.late_touchpoints)
    user = get_user_model().objects.filter(is_superuser=False).order_by("pk").first()
    client = Client()
    client.force_login(user)
    today = timezone.localdate()
    values = {
        "today": today.isoformat(),
        "two_years_ago": (today - timedelta(days=730)).isoformat(),
        "team": Team.objects.order_by("pk").values_list("pk", flat=True).first(),
    }
    print(f"{'page':<58} {'cold':>7} {'p50':>7} {'p95':>7} {'max':>7} {'queries':>8}")
    worst = 0.0
    for label, template in PAGES:
        url = template.format(**values)
        headers = {}
        if url.endswith("#htmx"):
            url = url.removesuffix("#htmx")
            headers["HTTP_HX_REQUEST"] = "true"
        cold = []
        for _ in range(3):
            figures_invalidate()
            started = time.perf_counter()
            assert client.get(url, **headers).status_code == 200, url
            cold.append(1000 * (time.perf_counter() - started))
        client.get(url, **headers)  # warm up
        times = []
        for _ in range(args.rounds):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url, **headers)
                times.append(1000 * (time.perf_counter() - started))
            assert response.status_code == 200, (url, response.status_code)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        worst = max(worst, p95)
        print(
            f"{label:<58} {statistics.median(cold):7.0f} {statistics.median(times):7.0f} "
            f"{p95:7.0f} {times[-1]:7.0f} {len(queries):8d}"
        )
    verdict = "within" if worst < TARGET_MS else "OVER"
    print(f"Worst p95: {worst:.0f} ms ({verdict} the {TARGET_MS} ms target).")


def late_touchpoints(count: int) -> dict:
    """Insert `count` touchpoints a day before their lead's deal was created,
    then time the refresh and compare with a from-scratch recomputation.
    Prints and returns the figures (scripts/bench.py reports them)."""
    import random

    from django.db import connection, transaction

    from leads.models import Opportunity, Touchpoint
    from reporting.models import AttributionCredit, PendingChange
    from reporting.rollups import opportunities_attribute, reporting_refresh

    reporting_refresh()  # start from nothing pending
    deals = list(
        Opportunity.objects.filter(source_lead__isnull=False).values_list(
            "pk", "source_lead_id", "created_at"
        )
    )
    chosen = random.Random(7).sample(deals, min(count, len(deals)))
    Touchpoint.objects.bulk_create(
        Touchpoint(lead_id=lead_id, type="page_view", channel="events",
                   occurred_at=created - timedelta(days=1), source="demo")
        for _, lead_id, created in chosen
    )  # fmt: skip
    pending = PendingChange.objects.count()
    started = time.perf_counter()
    result = reporting_refresh()
    seconds = time.perf_counter() - started
    ids = [pk for pk, _, _ in chosen]

    def credits():
        rows = AttributionCredit.objects.filter(opportunity_id__in=ids).values_list(
            "opportunity_id", "kind", "model", "channel", "campaign_id", "asset_id", "touches",
            "weight", "credit",
        )  # fmt: skip
        return sorted(((*row[:7], round(row[7], 9), row[8]) for row in rows), key=repr)

    incremental = credits()
    with transaction.atomic():
        opportunities_attribute(ids)
        recomputed = credits()
        transaction.set_rollback(True)
    events = AttributionCredit.objects.filter(opportunity_id__in=ids, channel="events").count()
    print(
        f"Late touchpoints: {len(chosen):,} inserted ({pending:,} pending changes); refresh "
        f"{seconds:.2f} s re-attributed {result.opportunities:,} deals, "
        f"{result.credit_rows:,} credit rows; equal to a recomputation: "
        f"{incremental == recomputed}; credit rows now naming the late channel: {events:,}"
    )
    connection.close()
    return {
        "touchpoints": len(chosen),
        "pending_changes": pending,
        "seconds": round(seconds, 2),
        "opportunities": result.opportunities,
        "credit_rows": result.credit_rows,
        "equal_to_recomputation": incremental == recomputed,
    }


if __name__ == "__main__":
    main()
