"""On the demo data, the dashboard's all-time opportunity counts, won revenue
and win rate equal a direct computation from the sample CSV, and the stored
attribution holds together (weights sum to 1 per deal and model, credits add
up to the attributed amounts)."""

import csv
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from config import demo as config_demo
from leads import demo as leads_demo
from reporting import demo as reporting_demo
from reporting import kpis
from reporting.periods import Period, ReportFilter
from sla import demo as sla_demo


def sample_pipeline() -> list[dict]:
    with open(settings.SAMPLE_DATA_DIR / "sales_pipeline.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_demo_figures_agree_with_the_sample(taxonomy, client):
    config_demo.demo_users_create()
    leads_demo.demo_load()
    sla_demo.agreement_load()
    reporting_demo.reporting_load()

    rows = sample_pipeline()
    won = [row for row in rows if row["deal_stage"] == "Won"]
    lost = [row for row in rows if row["deal_stage"] == "Lost"]
    won_revenue = sum(Decimal(row["close_value"]) for row in won)

    today = timezone.localdate()
    everything = ReportFilter(Period("custom", today - timedelta(days=5 * 365), today, "All"))
    totals = kpis.opportunity_totals(everything)["cur"]
    assert totals["new_count"] == len(rows) == 8800
    assert totals["won_count"] == len(won)
    assert totals["lost_count"] == len(lost)
    assert totals["won_amount"] == won_revenue
    # The same counts, so the same rate (up to float rounding of the division).
    assert totals["win_rate"] == pytest.approx(100 * len(won) / (len(won) + len(lost)), abs=1e-12)

    # The page shows the same numbers.
    client.force_login(config_demo_user("manager"))
    page = client.get(
        reverse("reporting:dashboard"),
        {
            "period": "custom",
            "start": everything.period.start.isoformat(),
            "end": today.isoformat(),
        },
    ).content.decode()
    assert f"${won_revenue:,.0f}" in page
    assert f"{len(won):,} won, {len(lost):,} lost" in page
    assert f"{100 * len(won) / (len(won) + len(lost)):.1f}%" in page
    assert f"{len(rows):,} opportunities" in page

    # Marketing-influenced revenue is part of won revenue.
    influenced = kpis.influenced_revenue(everything)["cur"]
    assert 0 < influenced < won_revenue

    with connection.cursor() as cursor:
        # Every model's weights sum to 1 on every path with touches...
        cursor.execute(
            """SELECT count(*), max(abs(total - 1)) FROM (
                   SELECT opportunity_id, kind, model, sum(weight) AS total
                     FROM reporting_attributioncredit GROUP BY 1, 2, 3) sums"""
        )
        paths, worst = cursor.fetchone()
        assert paths > 7 * 2000 and worst < 1e-9
        # ...and the credits add up to the amounts of the paths with touches.
        cursor.execute(
            """SELECT c.model, c.kind, sum(c.credit), max(t.amount)
                 FROM reporting_attributioncredit c
                 JOIN (SELECT kind, sum(amount) AS amount FROM reporting_attributionpath
                        WHERE touches > 0 GROUP BY kind) t ON t.kind = c.kind
                GROUP BY 1, 2"""
        )
        for model, kind, credited, amount in cursor.fetchall():
            assert abs(credited - amount) < Decimal("0.01") * 50, (model, kind)


def config_demo_user(username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)
