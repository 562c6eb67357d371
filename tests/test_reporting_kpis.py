"""Each KPI's definition, checked against numbers worked out by hand on a
small data set: March 2026 against the 31 days before it (Jan 29 – Feb 28)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from leads.models import (
    CampaignSpend,
    Channel,
    LeadStageChange,
    Opportunity,
)
from reporting import kpis
from reporting.goals import goal_progress
from reporting.models import GoalMetric, ReportingSettings, SharedGoal
from reporting.periods import Period, ReportFilter, period_for
from reporting.rollups import reporting_refresh
from tests.factories import (
    make_account,
    make_campaign,
    make_lead,
    make_team,
    make_touchpoint,
    reason,
)
from tests.sla_factories import make_sla

MARCH = Period("custom", date(2026, 3, 1), date(2026, 3, 31), "March 2026")


def at(month, day, hour=12, minute=0):
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def data(make_user, taxonomy):
    """The hand-made data set (see each test for the numbers it yields)."""
    rep_a = make_user("ann", first_name="Ann")
    rep_b = make_user("bob", first_name="Bob")
    east = make_team("East", members=[rep_a])
    make_team("West", members=[rep_b], region="West")
    enterprise = make_account(name="Big Co", employees=5000)
    small = make_account(name="Small Co", employees=50)
    search = make_campaign(channel=Channel.PAID_SEARCH)
    for month, amount in ((1, 3100), (2, 2800), (3, 3100)):
        CampaignSpend.objects.create(campaign=search, month=date(2026, month, 1), amount=amount)

    # Two source leads with their touches.
    l1 = make_lead(source_channel=Channel.PAID_SEARCH, created_at=at(2, 1), account=enterprise)
    make_touchpoint(l1, occurred_at=at(2, 1), channel=Channel.PAID_SEARCH, campaign=search)
    l2 = make_lead(source_channel=Channel.OUTBOUND, created_at=at(1, 20), account=small)
    make_touchpoint(l2, occurred_at=at(1, 20), channel=Channel.OUTBOUND)

    def deal(name, created, amount, *, stage="discovery", closed=None, owner, account, lead=None):
        return Opportunity.objects.create(
            name=name, created_at=created, amount=Decimal(amount), stage=stage, closed_on=closed,
            owner=owner, account=account, source_lead=lead,
            source_channel=lead.source_channel if lead else "",
            is_marketing_sourced=bool(lead and lead.is_marketing_sourced),
        )  # fmt: skip

    deal("O1", at(3, 5), 1000, stage="won", closed=date(2026, 3, 20), owner=rep_a,
         account=enterprise, lead=l1)  # fmt: skip
    deal("O2", at(3, 10), 3000, stage="lost", closed=date(2026, 3, 25), owner=rep_b, account=small)
    o3 = deal("O3", at(3, 15), 2000, owner=rep_a, account=enterprise, lead=l1)
    deal("O4", at(2, 10), 500, stage="won", closed=date(2026, 3, 2), owner=rep_b, account=small,
         lead=l2)  # fmt: skip
    deal("O5", at(2, 20), 700, stage="lost", closed=date(2026, 2, 25), owner=rep_b, account=small)
    LeadStageChange.objects.create(lead=l1, from_stage="opportunity", to_stage="customer",
                                   changed_at=at(3, 20, 17))  # fmt: skip

    # MQLs of March and their first contact (the SLA clock is on the lead).
    sla = make_sla(publish=False, mql_commitment_per_month=310, min_acceptance_rate=70)
    type(sla).objects.filter(pk=sla.pk).update(status="published", published_at=at(1, 1, 0))
    march_leads = []
    for day, contact_hours, due_hours in ((3, 2, 1), (4, 0.5, 1), (5, None, 1), (6, 4, 24)):
        mql_at = at(3, day, 9)
        lead = make_lead(
            created_at=at(3, day, 8), owner=rep_a, mql_at=mql_at, sla_version=sla,
            response_due_at=mql_at + timedelta(hours=due_hours),
            first_contact_at=mql_at + timedelta(hours=contact_hours) if contact_hours else None,
        )  # fmt: skip
        LeadStageChange.objects.create(lead=lead, from_stage="new", to_stage="mql",
                                       changed_at=mql_at)  # fmt: skip
        march_leads.append(lead)
    a, b, c, _ = march_leads
    LeadStageChange.objects.create(lead=a, from_stage="mql", to_stage="sal", actor=rep_a,
                                   changed_at=at(3, 7))  # fmt: skip
    LeadStageChange.objects.create(lead=b, from_stage="mql", to_stage="sal", actor=rep_a,
                                   changed_at=at(3, 7))  # fmt: skip
    LeadStageChange.objects.create(lead=c, from_stage="mql", to_stage="rejected", actor=rep_a,
                                   reason=reason("no-budget"), changed_at=at(3, 8))  # fmt: skip
    LeadStageChange.objects.create(lead=a, from_stage="sql", to_stage="opportunity",
                                   changed_at=at(3, 12))  # fmt: skip
    february = make_lead(created_at=at(2, 14), owner=rep_b)
    LeadStageChange.objects.create(lead=february, from_stage="new", to_stage="mql",
                                   changed_at=at(2, 14))  # fmt: skip
    reporting_refresh()
    return {"rep_a": rep_a, "rep_b": rep_b, "east": east, "o3": o3, "sla": sla}


def report(**kwargs):
    return ReportFilter(period=MARCH, **kwargs)


def test_periods_and_their_previous_periods():
    today = date(2026, 11, 24)
    month = period_for("month", today=today)
    assert (month.start, month.end) == (date(2026, 11, 1), today)
    assert (month.previous().start, month.previous().end) == (date(2026, 10, 1), date(2026, 10, 24))
    quarter = period_for("quarter", today=today)
    assert quarter.start == date(2026, 10, 1)
    assert (quarter.previous().start, quarter.previous().end) == (
        date(2026, 7, 1),
        date(2026, 8, 24),
    )
    last_quarter = period_for("last_quarter", today=today)
    assert (last_quarter.start, last_quarter.end) == (date(2026, 7, 1), date(2026, 9, 30))
    assert last_quarter.previous().start == date(2026, 4, 1)
    days90 = period_for("90d", today=today)
    assert days90.days == 90 and days90.previous().end == days90.start - timedelta(days=1)
    assert (MARCH.previous().start, MARCH.previous().end) == (date(2026, 1, 29), date(2026, 2, 28))
    # Month ends clamp: Mar 1–31 "this month" compares with Feb 1–28.
    march = period_for("month", today=date(2026, 3, 31))
    assert march.previous().end == date(2026, 2, 28)


def test_pipeline_revenue_win_rate_deal_size_and_cycle(data):
    totals = kpis.opportunity_totals(report())
    cur, prev = totals["cur"], totals["prev"]
    # Created in March: O1 1000 (sourced) + O2 3000 + O3 2000 (sourced).
    assert cur["new_amount"] == Decimal(6000) and cur["new_count"] == 3
    assert cur["sourced_amount"] == Decimal(3000) and cur["sourced_share"] == pytest.approx(50)
    # Closed in March: O1 won 1000, O4 won 500 (created in February), O2 lost.
    assert cur["won_amount"] == Decimal(1500) and cur["won_count"] == 2 and cur["lost_count"] == 1
    assert cur["win_rate"] == pytest.approx(200 / 3)
    assert cur["average_deal"] == Decimal(750)
    # Cycles: O1 Mar 5 -> Mar 20 = 15 days, O4 Feb 10 -> Mar 2 = 20 days.
    assert cur["cycle_median"] == pytest.approx(17.5)
    # Jan 29 – Feb 28: O4 500 + O5 700 created; O5 lost.
    assert prev["new_amount"] == Decimal(1200) and prev["win_rate"] == 0
    assert prev["won_amount"] == 0 and prev["average_deal"] is None


def test_sales_cycle_by_source_channel(data):
    rows = {row["source_channel"]: row for row in kpis.cycle_by_channel(report())}
    # Won in March: O1 (paid search lead, 15 days) and O4 (outbound lead, 20 days).
    assert rows[Channel.PAID_SEARCH]["deals"] == 1
    assert rows[Channel.PAID_SEARCH]["median_days"] == pytest.approx(15)
    assert rows[Channel.OUTBOUND]["mean_days"] == pytest.approx(20)
    assert rows[Channel.OUTBOUND]["revenue"] == Decimal(500)


def test_segment_and_team_filters(data):
    enterprise = kpis.opportunity_totals(report(segment="enterprise"))["cur"]
    assert enterprise["new_amount"] == Decimal(3000)  # O1 + O3
    east = kpis.opportunity_totals(report(team=data["east"]))["cur"]
    assert east["new_amount"] == Decimal(3000) and east["won_amount"] == Decimal(1000)


def test_marketing_influenced_revenue(data):
    # O1 (1000) has a paid-search touch before the win; O4's lead only an outbound one.
    assert kpis.influenced_revenue(report())["cur"] == Decimal(1000)


def test_mqls_acceptance_and_commitment(data):
    flows = kpis.stage_flow_totals(report())
    assert flows["cur"]["mqls"] == 4 and flows["prev"]["mqls"] == 1
    assert flows["cur"]["accepted"] == 2 and flows["cur"]["rejected"] == 1
    assert flows["cur"]["acceptance_rate"] == pytest.approx(200 / 3)
    # 310 a month in force all of March: 31 days × 310/31.
    versions = kpis.sla_versions_published()
    assert kpis.mql_commitment(MARCH, versions) == pytest.approx(310)
    # Half of April: 15 days × 310/30.
    april = Period("custom", date(2026, 4, 1), date(2026, 4, 15), "")
    assert kpis.mql_commitment(april, versions) == pytest.approx(155)
    # Before the SLA was published there is no commitment.
    assert (
        kpis.mql_commitment(Period("custom", date(2025, 1, 1), date(2025, 1, 31), ""), versions)
        is None
    )


def test_time_to_first_contact(data):
    row = kpis.response_times(report(), now=at(4, 1))["cur"]
    # Contacted after 2 h, 0.5 h and 4 h; one never contacted.
    assert row["mqls"] == 4 and row["contacted"] == 3
    assert row["median_hours"] == pytest.approx(2.0)
    assert row["p90_hours"] == pytest.approx(3.6)  # 2 + 0.8 × (4 − 2)
    # Within the due time: 0.5 h (due 1 h) and 4 h (due 24 h); the others missed it.
    assert (row["within"], row["resolved"]) == (2, 4)
    assert row["within_share"] == pytest.approx(50)


def test_funnel_and_lead_to_opportunity_conversion(data):
    result = kpis.funnel(report())
    stages = {s["key"]: s for s in result["stages"]}
    # Created in March: the four MQL leads.
    assert stages["created"]["reached"] == 4
    assert stages["mql"]["reached"] == 4 and stages["mql"]["conversion"] == pytest.approx(100)
    assert stages["mql"]["median_days"] == pytest.approx(1 / 24)  # 8:00 -> 9:00
    assert stages["sal"]["reached"] == 2 and stages["sal"]["conversion"] == pytest.approx(50)
    assert stages["opportunity"]["reached"] == 1
    assert result["cur"]["conversion"] == pytest.approx(25)


def test_cac_ltv_and_new_customers(data):
    money = kpis.economics(report())
    cur = money["cur"]
    # One new customer (lead l1, paid search) whose deals won 1000 so far.
    assert cur.customers == 1
    search = next(row for row in cur.channels if row.channel == Channel.PAID_SEARCH)
    assert search.spend == Decimal(3100) and search.customers == 1
    assert search.cac == Decimal(3100) and search.ltv == Decimal(1000)
    assert cur.cac == Decimal(3100) and cur.ltv_cac == pytest.approx(1000 / 3100)
    # Previous period: Jan 29–31 of January's 3100 (3/31) + all of February's 2800.
    assert money["prev"].spend == Decimal(3100)
    assert money["prev"].cac is None  # no customers
    # Sales cost and gross margin settings.
    ReportingSettings.objects.create(sales_cost_per_month=Decimal(620), gross_margin_percent=50)
    cur = kpis.economics(report())["cur"]
    assert cur.sales_cost == Decimal(620)
    assert cur.cac == Decimal(3720) and cur.ltv == Decimal(500)


def test_new_customers_of_a_to_date_period_compare_with_the_same_days_before(data):
    # March 1–20 compares with February 1–20: a customer of February 25 is in
    # neither period, one of February 10 is in the previous one.
    for day in (10, 25):
        lead = make_lead(source_channel=Channel.PAID_SEARCH, created_at=at(1, day))
        LeadStageChange.objects.create(lead=lead, from_stage="opportunity", to_stage="customer",
                                       changed_at=at(2, day))  # fmt: skip
    reporting_refresh()
    month = ReportFilter(period=period_for("month", today=date(2026, 3, 20)))
    customers = kpis.customers_by_channel(month)
    assert customers["prev"][Channel.PAID_SEARCH]["customers"] == 1
    assert customers["cur"][Channel.PAID_SEARCH]["customers"] == 1


def test_goal_progress(data):
    goal = SharedGoal.objects.create(
        title="$4,000 sourced pipeline in March", metric=GoalMetric.SOURCED_PIPELINE,
        target=Decimal(4000), starts_on=MARCH.start, ends_on=MARCH.end,
    )  # fmt: skip
    progress = goal_progress(goal, today=date(2026, 3, 31))
    assert progress.actual == Decimal(3000) and progress.percent == pytest.approx(75)
    assert progress.status == "behind"
    progress = goal_progress(goal, today=date(2026, 4, 2))
    assert progress.status == "missed"
    goal.metric, goal.target = GoalMetric.ACCEPTANCE_RATE, Decimal(60)
    goal.save()
    progress = goal_progress(goal, today=date(2026, 3, 20))
    assert progress.actual == pytest.approx(200 / 3) and progress.status == "on_track"


def test_the_dashboard_runs_a_fixed_number_of_queries(data, django_assert_max_num_queries):
    flt = report()
    with django_assert_max_num_queries(16):
        result = kpis.dashboard(flt)
    assert result["figures"]["new_pipeline"].value == Decimal(6000)
    assert result["figures"]["new_pipeline"].previous == Decimal(1200)
    assert result["figures"]["new_pipeline"].change == pytest.approx(400)
    assert result["figures"]["win_rate"].change == pytest.approx(200 / 3)  # points
