"""Reporting pages: every URL answers for every role, htmx gets fragments,
query counts do not grow with the data, goals and the QBR record are
changed only by managers, marketing and RevOps, every table exports as CSV."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads.models import CampaignSpend, Channel, LeadStageChange, Opportunity
from reporting.figure_cache import figures_invalidate
from reporting.models import QuarterlyReview, SharedGoal
from reporting.rollups import reporting_refresh
from tests.factories import make_account, make_asset, make_campaign, make_lead, make_touchpoint
from tests.sla_factories import make_sla

PAGES = [
    ("home", ()),
    ("reporting:dashboard", ()),
    ("reporting:attribution", ()),
    ("reporting:scorecard", ()),
    ("reporting:goal_list", ()),
    ("reporting:qbr", (2026, 3)),
]


def add_deals(count: int, *, owner=None) -> None:
    """`count` sourced deals with touches, stage changes and a win each."""
    now = timezone.now()
    campaign = make_campaign(channel=Channel.EMAIL)
    asset = make_asset()
    CampaignSpend.objects.get_or_create(
        campaign=campaign, month=timezone.localdate().replace(day=1), defaults={"amount": 500}
    )
    account = make_account()
    for i in range(count):
        lead = make_lead(source_channel=Channel.EMAIL, created_at=now - timedelta(days=20),
                         owner=owner, mql_at=now - timedelta(days=19),
                         response_due_at=now - timedelta(days=18),
                         first_contact_at=now - timedelta(days=18, hours=2))  # fmt: skip
        for day in (20, 15, 10):
            make_touchpoint(lead, occurred_at=now - timedelta(days=day), campaign=campaign,
                            asset=asset)  # fmt: skip
        for stage, day in (("mql", 19), ("sal", 18), ("sql", 12), ("opportunity", 5)):
            LeadStageChange.objects.create(
                lead=lead, to_stage=stage, changed_at=now - timedelta(days=day)
            )
        Opportunity.objects.create(
            name=f"Deal {i}", account=account, source_lead=lead, owner=owner,
            amount=Decimal(1000 + i), created_at=now - timedelta(days=5),
            stage="won" if i % 2 else "lost", closed_on=timezone.localdate(),
            source_channel=Channel.EMAIL, is_marketing_sourced=True,
        )  # fmt: skip
    reporting_refresh()


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_every_page_answers_every_role(name, args, client_for, marketer, rep, manager, revops):
    make_sla()
    add_deals(3, owner=rep)
    for user in (marketer, rep, manager, revops):
        response = client_for(user).get(reverse(name, args=args))
        assert response.status_code == 200, (name, user)


@pytest.mark.parametrize(
    ("name", "fragment_id"),
    [("reporting:dashboard", "dashboard-body"), ("home", "dashboard-body"),
     ("reporting:attribution", "attribution-body"), ("reporting:scorecard", "scorecard-body")],
)  # fmt: skip
def test_htmx_gets_the_fragment(name, fragment_id, client_for, rep):
    add_deals(2, owner=rep)
    response = client_for(rep).get(reverse(name), {"period": "90d"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="{fragment_id}"' in body and "<html" not in body
    assert "HX-Request" in response["Vary"]


def query_count(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params or {}).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("name", "params"),
    [("reporting:dashboard", {"period": "90d"}), ("reporting:attribution", {"period": "90d"}),
     ("reporting:scorecard", {}), ("reporting:rows", {"period": "90d"})],
)  # fmt: skip
def test_query_counts_do_not_grow_with_the_data(name, params, client_for, rep):
    """Neither the first request after the reporting tables changed (figures
    computed and cached) nor the next ones (figures from the cache) make more
    queries with more rows."""
    make_sla()
    client = client_for(rep)
    url = reverse(name, args=["new_pipeline"]) if name == "reporting:rows" else reverse(name)
    add_deals(2, owner=rep)
    client.get(url, params)  # warm caches (content types, sessions)
    figures_invalidate()
    small_cold = query_count(client, url, params)
    small_warm = query_count(client, url, params)
    add_deals(25, owner=rep)  # its refresh changes the tables: the next request is cold
    assert query_count(client, url, params) == small_cold
    assert query_count(client, url, params) == small_warm
    # Served from the cache, no figure costs more than its one query did.
    assert small_warm <= small_cold


def test_filters_change_the_figures_and_links_keep_them(client_for, rep):
    add_deals(4, owner=rep)
    client = client_for(rep)
    # The deals are five days old: the last 90 days hold them on any day of the month.
    body = client.get(reverse("reporting:dashboard"), {"period": "90d"}).content.decode()
    assert "Last 90 days" in body and "$4,006" in body  # 1000 + 1001 + 1002 + 1003
    assert reverse("reporting:rows", args=["new_pipeline"]) + "?period=90d" in body
    empty = client.get(reverse("reporting:dashboard"), {"period": "custom", "start": "2001-01-01",
                                                        "end": "2001-01-31"}).content.decode()  # fmt: skip
    assert "$4,006" not in empty
    invalid = client.get(reverse("reporting:dashboard"), {"period": "custom", "start": "2001-02-01",
                                                          "end": "2001-01-01"})  # fmt: skip
    assert invalid.status_code == 200 and "must end on or after" in invalid.content.decode()


def test_rows_behind_a_figure_page_and_export(client_for, rep):
    add_deals(60, owner=rep)
    client = client_for(rep)
    url = reverse("reporting:rows", args=["new_pipeline"])
    first = client.get(url, {"period": "90d"})
    assert first.status_code == 200
    assert first.content.decode().count("/deals/") == 50  # one page
    assert "after=" in first.content.decode()
    export = client.get(reverse("reporting:rows_export", args=["new_pipeline"]), {"period": "90d"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][0] == "Opportunity" and len(rows) == 61
    assert client.get(reverse("reporting:rows", args=["nonsense"])).status_code == 404
    credited = client.get(reverse("reporting:rows", args=["credited"]),
                          {"period": "month", "model": "w_shaped", "kind": "revenue",
                           "channel": "email"})  # fmt: skip
    assert credited.status_code == 200 and "W-shaped" in credited.content.decode()
    odd = client.get(reverse("reporting:rows", args=["credited"]), {"campaign": "abc"})
    assert odd.status_code == 200  # a hand-edited URL gets "no campaign", not an error


EXPORTS = {
    "dashboard": ["figures", "funnel", "cycle", "economics", "trend", "goals"],
    "attribution": ["channels", "campaigns", "assets", "ltv", "totals", "weights"],
    "scorecard": ["versions", "teams", "reps"],
    "goals": ["goals"],
}


def test_every_table_exports_as_csv(client_for, rep):
    make_sla()
    add_deals(3, owner=rep)
    client = client_for(rep)
    for page, tables in EXPORTS.items():
        for table in tables:
            response = client.get(reverse("reporting:export", args=[page]), {"table": table})
            assert response.status_code == 200, (page, table)
            assert response["Content-Type"].startswith("text/csv")
            assert len(list(csv.reader(io.StringIO(response.content.decode())))) >= 1
    for table in ("kpis", "sla", "themes", "goals", "actions"):
        response = client.get(reverse("reporting:export", args=["qbr"]),
                              {"table": table, "quarter": "2026-q3"})  # fmt: skip
        assert response.status_code == 200, table
    assert (
        client.get(reverse("reporting:export", args=["dashboard"]), {"table": "x"}).status_code
        == 404
    )


def goal_data(**overrides):
    today = timezone.localdate()
    data = {"title": "$2M sourced pipeline", "metric": "sourced_pipeline", "target": "2000000",
            "starts_on": today.replace(day=1).isoformat(), "ends_on": today.isoformat(),
            "segment": "", "team": "", "note": ""}  # fmt: skip
    return {**data, **overrides}


def test_goals_are_set_by_managers_marketing_and_revops(client_for, rep, marketer, manager):
    url = reverse("reporting:goal_create")
    assert client_for(rep).get(url).status_code == 403
    assert client_for(rep).post(url, goal_data()).status_code == 403
    response = client_for(marketer).post(url, goal_data())
    goal = SharedGoal.objects.get()
    assert response.status_code == 302 and response["Location"] == goal.get_absolute_url()
    assert goal.created_by == marketer
    edit = reverse("reporting:goal_edit", args=[goal.pk])
    assert client_for(manager).post(edit, goal_data(target="3000000")).status_code == 302
    goal.refresh_from_db()
    assert goal.target == Decimal(3_000_000)
    # An invalid form comes back with its errors (200), as a fragment for htmx.
    invalid = client_for(manager).post(url, goal_data(ends_on="2000-01-01"), HTTP_HX_REQUEST="true")
    assert invalid.status_code == 200 and 'id="goal-form"' in invalid.content.decode()
    assert "<html" not in invalid.content.decode()
    dashboard = client_for(rep).get(reverse("reporting:dashboard"), {"period": "month"})
    assert "$2M sourced pipeline" in dashboard.content.decode()
    delete = reverse("reporting:goal_delete", args=[goal.pk])
    assert client_for(rep).post(delete).status_code == 403
    assert client_for(manager).post(delete).status_code == 302
    assert not SharedGoal.objects.exists()


def test_the_qbr_records_one_improvement(client_for, rep, manager):
    url = reverse("reporting:qbr", args=[2026, 3])
    data = {"improvement": "Answer hand-raisers within the hour.", "improvement_owner": "Mona",
            "notes": ""}  # fmt: skip
    assert client_for(rep).post(url, data).status_code == 403
    response = client_for(manager).post(url, data, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and 'id="qbr-record"' in body and "<html" not in body
    review = QuarterlyReview.objects.get()
    assert review.quarter_start == date(2026, 7, 1) and review.recorded_by == manager
    client_for(manager).post(url, {**data, "improvement": "Revised."})
    assert QuarterlyReview.objects.get().improvement == "Revised."
    # The next quarter's page shows what was committed.
    following = client_for(rep).get(reverse("reporting:qbr", args=[2026, 4])).content.decode()
    assert "What we committed to last quarter" in following and "Revised." in following
    assert client_for(rep).get(reverse("reporting:qbr", args=[2026, 5])).status_code == 404


def test_qbr_current_goes_to_the_quarter_that_ended(client_for, rep):
    response = client_for(rep).get(reverse("reporting:qbr_current"))
    assert response.status_code == 302 and "/reporting/qbr/" in response["Location"]


def test_freshness_is_shown(client_for, rep):
    add_deals(1, owner=rep)
    make_lead()  # pending, not yet refreshed
    body = client_for(rep).get(reverse("reporting:dashboard")).content.decode()
    assert "Figures as of" in body and "waiting for the next refresh" in body
