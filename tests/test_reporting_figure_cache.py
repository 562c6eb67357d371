"""Figures from the derived tables are cached per generation of those tables:
served from the cache until a refresh or rebuild changes them, never stale
after; the cold path computes what the uncached functions compute; the
moment-dependent clocks stay exact; the stage-flow rollups read by month and
by day agree; the default views are warmed after a change."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads.models import Channel, LeadStageChange, Opportunity, TeamMembership
from reporting import kpis, selectors, tasks
from reporting.figure_cache import figures_cached, figures_invalidate
from reporting.models import GoalMetric, RefreshState, SharedGoal
from reporting.periods import Period, ReportFilter, period_for
from reporting.rollups import refresh_state, reporting_rebuild, reporting_refresh
from reporting.services import WARM_PERIODS, figures_warm
from tests.factories import make_lead, make_opportunity, make_team, make_touchpoint
from tests.sla_factories import make_sla

NOW = timezone.now()
TODAY = timezone.localdate()


def generation() -> int:
    return refresh_state().generation


def tag() -> str:
    """What the page reads before its figures (reporting.figure_cache)."""
    return refresh_state().figures_tag


def mql(lead, when, from_stage="new"):
    LeadStageChange.objects.create(
        lead=lead, from_stage=from_stage, to_stage="mql", changed_at=when
    )


def this_month() -> ReportFilter:
    return ReportFilter(period=period_for("month", today=TODAY))


def test_a_cached_figure_is_served_until_a_refresh_changes_the_tables(db):
    mql(make_lead(), NOW)
    reporting_refresh()
    flt = this_month()
    with figures_cached(tag()):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 1
        with CaptureQueriesContext(connection) as queries:
            assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 1
    assert len(queries) == 1  # the cache entry, not the rollups

    mql(make_lead(), NOW)  # pending: the tables (and so the figure) have not changed yet
    with figures_cached(tag()):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 1
    before, old_tag = generation(), tag()
    assert reporting_refresh().generation_bumped
    assert generation() == before + 1
    with figures_cached(tag()):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 2
    # A reader still holding the old generation recomputes; it never gets the
    # old value back from an entry the new generation overwrote.
    with figures_cached(old_tag):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 2


def test_a_state_row_made_again_never_matches_figures_cached_before(db):
    """A flushed or re-created database counts generations from 0 again; the
    state row's new epoch keeps the cache's older entries from matching."""
    mql(make_lead(), NOW)
    reporting_refresh()
    flt = this_month()
    with figures_cached(tag()):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 1
    counted = generation()
    RefreshState.objects.all().delete()
    mql(make_lead(), NOW)
    reporting_refresh()
    assert generation() == counted  # the same number again
    with figures_cached(tag()):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 2


def test_the_page_shows_the_new_figure_after_the_refresh(client_for, rep):
    make_sla()
    client = client_for(rep)
    url = reverse("reporting:dashboard")

    def mqls_shown() -> str:
        body = client.get(url, {"period": "month"}).content.decode()
        figure = body[body.index('id="figure-mqls"') :]
        return figure[figure.index('<div class="stat">') + 18 : figure.index("</div>")].strip()

    for _ in range(3):
        mql(make_lead(), NOW)
    reporting_refresh()
    assert mqls_shown() == "3"
    assert mqls_shown() == "3"  # from the cache
    mql(make_lead(), NOW)
    assert mqls_shown() == "3"  # not refreshed yet: the page says how many changes wait
    reporting_refresh()
    assert mqls_shown() == "4"


def test_a_refresh_that_changes_no_derived_row_keeps_the_generation(db):
    lead = make_lead()
    reporting_refresh()
    before = generation()
    make_touchpoint(lead, occurred_at=NOW)  # a lead without deals: nothing to re-attribute
    result = reporting_refresh()
    assert result.changes == 1 and not result.generation_bumped
    assert generation() == before
    make_opportunity(name="Deal", source_lead=lead, amount=Decimal(100))
    assert reporting_refresh().generation_bumped
    assert generation() == before + 1


def test_a_rebuild_always_changes_the_generation(db):
    before = generation()
    reporting_rebuild()
    assert generation() == before + 1


def test_the_cold_path_computes_what_the_uncached_functions_do(db):
    lead = make_lead(source_channel=Channel.EMAIL, created_at=NOW - timedelta(days=3),
                     mql_at=NOW - timedelta(days=2), response_due_at=NOW - timedelta(days=1),
                     first_contact_at=NOW - timedelta(days=1, hours=3))  # fmt: skip
    mql(lead, NOW - timedelta(days=2))
    LeadStageChange.objects.create(lead=lead, from_stage="mql", to_stage="sal",
                                   changed_at=NOW - timedelta(days=1))  # fmt: skip
    make_touchpoint(lead, occurred_at=NOW - timedelta(days=3))
    Opportunity.objects.create(name="Deal", source_lead=lead, amount=Decimal(5000), stage="won",
                               created_at=NOW - timedelta(days=1), closed_on=TODAY,
                               source_channel=Channel.EMAIL)  # fmt: skip
    reporting_refresh()
    for key in WARM_PERIODS:
        flt = ReportFilter(period=period_for(key, today=TODAY))
        uncached = kpis.dashboard(flt, now=NOW)
        with figures_cached(tag()):
            cold = kpis.dashboard(flt, now=NOW)
            warm = kpis.dashboard(flt, now=NOW)
        for name in ("funnel", "flows", "response", "trend"):
            assert cold[name] == uncached[name] == warm[name], (key, name)
        values = {f.key: (f.value, f.previous) for f in uncached["figure_list"]}
        assert {f.key: (f.value, f.previous) for f in warm["figure_list"]} == values


def test_cached_response_clocks_resolve_as_time_passes(db):
    """A clock still running when the figure was cached counts as resolved
    once its due time has passed, with no recomputation."""
    make_lead(mql_at=NOW - timedelta(hours=1), response_due_at=NOW + timedelta(hours=2))
    make_lead(mql_at=NOW - timedelta(hours=1), response_due_at=NOW - timedelta(minutes=5))
    reporting_refresh()
    flt = ReportFilter(period=Period("custom", TODAY - timedelta(days=1), TODAY, ""))
    later = timezone.now() + timedelta(hours=3)
    with figures_cached(tag()):
        assert kpis.response_times(flt)["cur"]["resolved"] == 1
        with CaptureQueriesContext(connection) as queries:
            assert kpis.response_times(flt, now=later)["cur"]["resolved"] == 2
        assert len(queries) == 1  # the cache entry
    assert kpis.response_times(flt, now=later)["cur"]["resolved"] == 2  # uncached, the same
    # Asked about a moment before the cached one: computed for that moment.
    with figures_cached(tag()):
        earlier = NOW - timedelta(minutes=10)
        assert kpis.response_times(flt, now=earlier)["cur"]["resolved"] == 0


def test_a_team_filter_follows_its_members_without_a_refresh(make_user):
    ann, bob = make_user("ann"), make_user("bob")
    team = make_team("East", members=[ann])
    mql(make_lead(owner=ann), NOW)
    mql(make_lead(owner=bob), NOW)
    reporting_refresh()
    flt = ReportFilter(period=this_month().period, team=team)
    with figures_cached(tag()):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 1
    TeamMembership.objects.create(user=bob, team=team)
    flt = ReportFilter(period=this_month().period, team=team)  # a new request's filter
    with figures_cached(tag()):
        assert kpis.stage_flow_totals(flt)["cur"]["mqls"] == 2


@pytest.mark.parametrize(
    "period",
    [
        Period("custom", date(2026, 1, 1), date(2026, 3, 31), ""),  # whole months only
        Period("custom", date(2026, 1, 17), date(2026, 3, 9), ""),  # edges and a whole month
        Period("custom", date(2026, 2, 3), date(2026, 2, 20), ""),  # inside one month
        Period("custom", date(2026, 1, 31), date(2026, 3, 1), ""),  # one day either side
    ],
)
def test_stage_flows_by_month_and_by_day_agree_with_the_stage_changes(period, make_user):
    ann = make_user("ann")
    leads = [make_lead(owner=ann if n % 2 else None, segment="smb" if n % 3 else "")
             for n in range(6)]  # fmt: skip
    start = datetime(2025, 12, 28, 15, tzinfo=timezone.get_current_timezone())
    for day in range(0, 100, 3):
        lead = leads[day % len(leads)]
        mql(lead, start + timedelta(days=day))
        LeadStageChange.objects.create(
            lead=lead, from_stage="mql", to_stage="sal" if day % 2 else "rejected",
            changed_at=start + timedelta(days=day, hours=5),
        )  # fmt: skip
    reporting_refresh()
    for flt in (ReportFilter(period=period), ReportFilter(period=period, segment="smb")):
        row = kpis.stage_flows(flt, {"p": period}, kinds=("mqls", "accepted", "rejected"))[0]
        changes = LeadStageChange.objects.filter(kpis.moment_in("changed_at", period))
        if flt.segment:
            changes = changes.filter(lead__segment=flt.segment)
        assert row["p_mqls"] == changes.filter(to_stage="mql").count()
        assert row["p_accepted"] == changes.filter(from_stage="mql", to_stage="sal").count()
        assert row["p_rejected"] == changes.filter(to_stage="rejected").count()
    by_month = kpis.stage_flows(ReportFilter(period=period), {"p": period}, kinds=("mqls",),
                                group_by=("month",))  # fmt: skip
    for row in by_month:
        month = Period("custom", max(row["month"], period.start),
                       min(kpis.month_end(row["month"]), period.end), "")  # fmt: skip
        changes = LeadStageChange.objects.filter(kpis.moment_in("changed_at", month))
        assert row["p_mqls"] == changes.filter(to_stage="mql").count()


def test_the_refresh_task_warms_the_default_views_only_after_a_change(
    db, django_capture_on_commit_callbacks
):
    reporting_refresh()
    with django_capture_on_commit_callbacks() as callbacks:
        tasks.reporting_refresh_run()
    assert callbacks == []  # nothing changed
    mql(make_lead(), NOW)
    with django_capture_on_commit_callbacks() as callbacks:
        tasks.reporting_refresh_run()
    assert len(callbacks) == 1


def query_count(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params or {}).status_code == 200
    return len(queries)


def test_after_the_warm_up_the_first_viewer_is_served_from_the_cache(client_for, rep):
    make_sla()
    lead = make_lead(owner=rep, mql_at=NOW, response_due_at=NOW + timedelta(hours=1))
    mql(lead, NOW)
    reporting_refresh()
    # Goals on the dashboard (this quarter) and on last quarter's QBR.
    for key, metric in (("quarter", GoalMetric.RESPONSE_WITHIN_SLA), ("last_quarter", "mqls")):
        period = period_for(key, today=TODAY)
        SharedGoal.objects.create(title=key, metric=metric, target=Decimal(10),
                                  starts_on=period.start, ends_on=period.end)  # fmt: skip
    client = client_for(rep)
    last_quarter = period_for("last_quarter", today=TODAY).start
    qbr = reverse("reporting:qbr", args=[last_quarter.year, (last_quarter.month - 1) // 3 + 1])
    pages = [(reverse("home"), {}), (qbr, {})] + [
        (reverse(name), {"period": key})
        for key in WARM_PERIODS
        for name in ("reporting:dashboard", "reporting:attribution", "reporting:scorecard")
    ]
    client.get(reverse("home"))  # warm what is not figures (sessions, content types)
    figures_warm()
    for url, params in pages:
        first = query_count(client, url, params)
        assert query_count(client, url, params) == first, (url, params)  # nothing left to cache
    figures_invalidate()
    url, params = pages[2]
    assert query_count(client, url, params) > query_count(client, url, params)  # cold, then warm


def test_the_scorecard_from_the_cache_equals_the_scorecard_computed(make_user):
    ann = make_user("ann", first_name="Ann")
    make_team("East", members=[ann])
    sla = make_sla()
    for hours in (1, 30):
        lead = make_lead(owner=ann, sla_version=sla, mql_at=NOW - timedelta(hours=40),
                         response_due_at=NOW - timedelta(hours=40 - hours),
                         first_contact_at=NOW - timedelta(hours=38))  # fmt: skip
        mql(lead, NOW - timedelta(hours=40))
    reporting_refresh()
    period = period_for("90d", today=TODAY)
    computed = (selectors.scorecard_by_version(period), selectors.scorecard_by_rep(period))
    with figures_cached(tag()):
        cold = (selectors.scorecard_by_version(period), selectors.scorecard_by_rep(period))
        warm = (selectors.scorecard_by_version(period), selectors.scorecard_by_rep(period))
    assert cold == computed == warm
    assert computed[1]["reps"][0]["mqls"] == 2 and computed[1]["reps"][0]["within"] == 1
