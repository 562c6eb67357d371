"""`make demo`'s data, loaded once for this module (about a minute): the
Maven sample through the importer and the generated marketing side (loaded
twice without duplicates); the dashboard's all-time opportunity counts, won
revenue and win rate equal a direct computation from the sample CSV, and the
stored attribution holds together (weights sum to 1 per deal and model,
credits add up to the attributed amounts); a dozen retrospectives on closed
deals above the threshold, both teams in each, action items against every
kind of target, some closed by SLA v2, and loading again adds nothing."""

import csv
import importlib
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from config import demo as config_demo
from leads import demo as leads_demo
from leads.models import (
    Account,
    Campaign,
    CampaignSpend,
    FeedbackReason,
    Lead,
    LeadStage,
    Opportunity,
    Team,
    Touchpoint,
)
from reporting import demo as reporting_demo
from reporting import kpis
from reporting import winloss_selectors as selectors
from reporting.models import ActionItem, Retrospective, RetrospectiveParticipant
from reporting.periods import Period, ReportFilter
from reporting.winloss_demo import winloss_load
from sla import demo as sla_demo
from sla.models import SlaVersion
from tests.winloss_factories import driver_categories_seed


@pytest.fixture(scope="module")
def demo_data(django_db_setup, django_db_blocker):
    """The whole demo, as `make demo` loads it, in one transaction that is
    rolled back after the module's tests (each test runs in a savepoint of
    it, so what one test writes does not reach the next)."""
    with django_db_blocker.unblock(), transaction.atomic():
        if not FeedbackReason.objects.exists():
            importlib.import_module("leads.migrations.0002_feedback_taxonomy").seed(apps, None)
        driver_categories_seed()
        config_demo.demo_users_create()
        leads_demo.demo_load()
        sla_demo.agreement_load()
        winloss_load()
        reporting_demo.reporting_load()
        # Check the deferred foreign keys of everything loaded once, here: left
        # pending, each test's teardown would check them all again (its check
        # runs in a savepoint that is rolled back, so they stay pending).
        connection.check_constraints()
        yield
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _db(db):
    """Every test here reads the database (inside the module's transaction)."""


def maven(name):
    with open(leads_demo.MAVEN_DIR / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def sample_pipeline() -> list[dict]:
    with open(settings.SAMPLE_DATA_DIR / "sales_pipeline.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_demo_load_agrees_with_the_sample_and_is_idempotent(demo_data):

    pipeline = maven("sales_pipeline.csv")
    assert Opportunity.objects.count() == len(pipeline) == 8800
    by_stage = Counter(row["deal_stage"] for row in pipeline)
    ours = dict(Opportunity.objects.values_list("stage").annotate(n=Count("id")))
    assert ours["won"] == by_stage["Won"]
    assert ours["lost"] == by_stage["Lost"]
    assert ours["discovery"] == by_stage["Prospecting"]
    assert ours["demo"] + ours["proposal"] + ours["negotiation"] == by_stage["Engaging"]
    won_revenue = sum(Decimal(row["close_value"]) for row in pipeline if row["deal_stage"] == "Won")
    assert Opportunity.objects.filter(stage="won").aggregate(s=Sum("amount"))["s"] == won_revenue
    assert Opportunity.objects.filter(account__isnull=True).count() == sum(
        1 for row in pipeline if not row["account"]
    )
    # The sample's flaws are handled, not dropped: GTXPro is GTX Pro.
    assert Opportunity.objects.filter(product__name="GTX Pro").count() == sum(
        1 for row in pipeline if row["product"] == "GTXPro"
    )
    assert Account.objects.count() == 85
    assert not Account.objects.filter(industry="technolgy").exists()
    agents = {row["sales_agent"] for row in maven("sales_teams.csv")}
    users = {u.get_full_name() for u in get_user_model().objects.all()}
    assert agents <= users
    assert Team.objects.count() == 6
    rep = get_user_model().objects.get(username="rep")
    assert rep.get_full_name() == "Anna Snelling"
    assert rep.owned_opportunities.count() == sum(
        1 for row in pipeline if row["sales_agent"] == "Anna Snelling"
    )

    # The marketing side agrees with the deals.
    assert Lead.objects.count() > 3000
    assert Touchpoint.objects.count() > 80_000
    assert Campaign.objects.count() >= 10 and CampaignSpend.objects.exists()
    sourced = Opportunity.objects.filter(source_lead__isnull=False).select_related("source_lead")
    assert sourced.count() > 1000
    for opportunity in sourced[:200]:
        first_touch = opportunity.source_lead.touchpoints.order_by("occurred_at").first()
        assert first_touch.occurred_at <= opportunity.created_at
        assert opportunity.is_marketing_sourced == (opportunity.source_channel != "outbound")
    assert Lead.objects.filter(owner=rep, stage=LeadStage.MQL).exists()  # work for the rep

    counts = (Lead.objects.count(), Touchpoint.objects.count(), Opportunity.objects.count())
    leads_demo.demo_load()  # a second `make demo`
    assert (Lead.objects.count(), Touchpoint.objects.count(), Opportunity.objects.count()) == counts


def test_demo_figures_agree_with_the_sample(demo_data, client):

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
    client.force_login(get_user_model().objects.get(username="manager"))
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


def test_demo_retrospectives(demo_data):

    v2 = SlaVersion.objects.get(number=2)
    retros = Retrospective.objects.select_related("opportunity")
    assert retros.count() == 12
    assert {r.outcome for r in retros} == {"won", "lost"}
    assert {r.loss_type for r in retros if r.outcome == "lost"} == {
        "competitor", "no_decision", "unknown",
    }  # fmt: skip
    for retro in retros:
        assert retro.opportunity.stage == retro.outcome
        assert retro.opportunity.amount > v2.retro_amount_threshold
        assert retro.drivers.exists() and retro.learnings
        teams = set(retro.participant_rows.values_list("team", flat=True))
        assert {"marketing", "sales"} <= teams
    assert RetrospectiveParticipant.objects.filter(user__username="rep").exists()

    kinds = dict(ActionItem.objects.values_list("target_kind").annotate(n=Count("id")))
    assert {"sla", "icp", "persona", "campaign", "asset", "other"} <= set(kinds)
    closed_by_v2 = ActionItem.objects.filter(closed_by_sla_version=v2)
    assert closed_by_v2.count() == 3
    assert all(item.closed_at == v2.published_at for item in closed_by_v2)
    assert selectors.action_items_open().count() >= 5

    winloss_load()  # idempotent
    assert Retrospective.objects.count() == 12
