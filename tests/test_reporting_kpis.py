"""Each KPI's definition, checked against numbers worked out by hand on a
small data set: March 2026 against the 31 days before it (Jan 29 – Feb 28)."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from leads.models import (
    CampaignSpend,
    Channel,
    Lead,
    LeadStageChange,
    Opportunity,
    Team,
)
from reporting import kpis, selectors
from reporting.goals import goal_progress
from reporting.models import GoalMetric, ReportingSettings, SharedGoal
from reporting.periods import Period, ReportFilter, period_for
from reporting.rollups import reporting_rebuild, reporting_refresh
from tests.factories import (
    make_account,
    make_campaign,
    make_lead,
    make_team,
    make_touchpoint,
    reason,
)
from tests.page_text import element_text, links, parse, table_rows
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
    return {"rep_a": rep_a, "rep_b": rep_b, "east": east, "o3": o3, "sla": sla,
            "search": search, "l1": l1, "l2": l2, "march_leads": march_leads}  # fmt: skip


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


@pytest.fixture
def segmented(data):
    """The data set with segments and owners on its leads: March MQLs a and b
    enterprise, c and d small business; l1 (paid search, customer in March)
    enterprise and Ann's, l2 small business and Bob's. Deals take their
    account's segment: O1, O3 enterprise; O2, O4, O5 small business."""
    a, b, c, d = data["march_leads"]
    Lead.objects.filter(pk__in=[a.pk, b.pk, data["l1"].pk]).update(segment="enterprise")
    Lead.objects.filter(pk__in=[c.pk, d.pk, data["l2"].pk]).update(segment="smb")
    Lead.objects.filter(pk=data["l1"].pk).update(owner=data["rep_a"])
    Lead.objects.filter(pk=data["l2"].pk).update(owner=data["rep_b"])
    reporting_rebuild()  # stage-flow counts keep their dimensions until a rebuild
    west = Team.objects.get(name="West")
    return {**data, "west": west}


def test_filters_on_mqls_acceptance_and_response_times(segmented):
    west = segmented["west"]
    east = segmented["east"]
    flows = {name: kpis.stage_flow_totals(flt)["cur"] for name, flt in (
        ("enterprise", report(segment="enterprise")), ("smb", report(segment="smb")),
        ("east", report(team=east)), ("west", report(team=west)))}  # fmt: skip
    # Enterprise: a and b became MQLs and were accepted.
    assert (flows["enterprise"]["mqls"], flows["enterprise"]["accepted"]) == (2, 2)
    assert flows["enterprise"]["acceptance_rate"] == pytest.approx(100)
    # Small business: c (rejected) and d (undecided).
    assert (flows["smb"]["mqls"], flows["smb"]["rejected"]) == (2, 1)
    assert flows["smb"]["acceptance_rate"] == pytest.approx(0)
    # Ann owns every March MQL and took every decision; Bob's MQL was in February.
    assert (flows["east"]["mqls"], flows["east"]["accepted"], flows["east"]["rejected"]) == (
        4,
        2,
        1,
    )
    assert flows["west"]["mqls"] == 0 and flows["west"]["acceptance_rate"] is None
    assert kpis.stage_flow_totals(report(team=west))["prev"]["mqls"] == 1

    now = at(4, 1)
    enterprise = kpis.response_times(report(segment="enterprise"), now=now)["cur"]
    # a: 2 h (due 1 h, missed), b: 0.5 h (within).
    assert enterprise["median_hours"] == pytest.approx(1.25)
    assert (enterprise["within"], enterprise["resolved"]) == (1, 2)
    smb = kpis.response_times(report(segment="smb"), now=now)["cur"]
    # c: never contacted, due time passed; d: 4 h (due 24 h).
    assert smb["contacted"] == 1 and smb["median_hours"] == pytest.approx(4)
    assert (smb["within"], smb["resolved"]) == (1, 2)
    assert kpis.response_times(report(team=east), now=now)["cur"]["mqls"] == 4
    assert kpis.response_times(report(team=west), now=now)["cur"]["mqls"] == 0


def test_filters_on_the_funnel_influenced_revenue_and_economics(segmented):
    west, east = segmented["west"], segmented["east"]

    def stages(flt):
        return {s["key"]: s["reached"] for s in kpis.funnel(flt)["stages"]}

    # Created in March: a, b (enterprise: both accepted, a converted), c, d (smb).
    assert stages(report(segment="enterprise")) == {
        "created": 2, "mql": 2, "sal": 2, "sql": 0, "opportunity": 1, "customer": 0}  # fmt: skip
    assert kpis.funnel(report(segment="enterprise"))["cur"]["conversion"] == pytest.approx(50)
    assert stages(report(segment="smb"))["created"] == 2
    assert stages(report(segment="smb"))["sal"] == 0
    assert stages(report(team=east))["created"] == 4
    assert stages(report(team=west))["created"] == 0

    # O1 (enterprise, Ann's) is the one influenced win.
    assert kpis.influenced_revenue(report(segment="enterprise"))["cur"] == Decimal(1000)
    assert kpis.influenced_revenue(report(segment="smb"))["cur"] == 0
    assert kpis.influenced_revenue(report(team=east))["cur"] == Decimal(1000)
    assert kpis.influenced_revenue(report(team=west))["cur"] == 0

    # l1, enterprise and Ann's, is the one new customer; spend is not divided.
    for flt in (report(segment="enterprise"), report(team=east)):
        money = kpis.economics(flt)["cur"]
        assert money.customers == 1 and money.cac == Decimal(3100)
        assert money.ltv == Decimal(1000)
    for flt in (report(segment="smb"), report(team=west)):
        money = kpis.economics(flt)["cur"]
        assert money.customers == 0 and money.cac is None and money.spend == Decimal(3100)


def test_filters_on_attribution(segmented):
    west, east = segmented["west"], segmented["east"]

    def pipeline_by_channel(flt):
        rows = selectors.attribution(flt, models=["linear", "first_touch"])["channels"]
        return {row.key: row.pipeline["linear"] for row in rows if row.pipeline["linear"]}

    # O1 (1000) and O3 (2000) are enterprise, Ann's, and credited to l1's paid-search touch.
    assert pipeline_by_channel(report()) == {Channel.PAID_SEARCH: Decimal(3000)}
    assert pipeline_by_channel(report(segment="enterprise")) == {Channel.PAID_SEARCH: Decimal(3000)}
    assert pipeline_by_channel(report(team=east)) == {Channel.PAID_SEARCH: Decimal(3000)}
    # O2 (small business, Bob's) has no source lead: nothing to credit.
    assert pipeline_by_channel(report(segment="smb")) == {}
    assert pipeline_by_channel(report(team=west)) == {}
    totals = selectors.attribution(report(segment="smb"), models=["linear", "u_shaped"])["totals"]
    assert totals["pipeline"]["unattributed"] == Decimal(3000)  # O2


def test_every_figure_has_a_definition(data, client_for):
    figures = kpis.dashboard(report())["figure_list"]
    assert len({f.key for f in figures}) == len(figures)
    missing = [f.key for f in figures if not f.definition.strip()]
    assert missing == []
    assert kpis.DEFINITIONS["first_contact_within_sla"] == next(
        f.definition for f in figures if f.key == "first_contact_within_sla"
    )
    # On the page: each card's tooltip, the "How each figure is defined" list, the CSV.
    client = client_for(data["rep_a"])
    body = client.get(reverse("reporting:dashboard"), {"period": "90d"}).content.decode()
    page = parse(body)
    tooltips = {
        card.attrs["id"]: card.find("abbr").attrs.get("title", "")
        for card in page.iter("article")
        if card.attrs.get("id", "").startswith("figure-")
    }
    assert sorted(tooltips) == sorted(f"figure-{f.key}" for f in figures)
    assert [key for key, title in tooltips.items() if not title.strip()] == []
    definitions = page.find("details", **{"class": "card definitions"}).find("dl")
    terms = [dt.text() for dt in definitions.iter("dt")]
    descriptions = [dd.text() for dd in definitions.iter("dd")]
    assert terms == [f.label for f in figures]
    assert all(descriptions) and len(descriptions) == len(figures)
    export = client.get(reverse("reporting:export", args=["dashboard"]), {"table": "figures"})
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [row["figure"] for row in rows] == [f.label for f in figures]
    assert [row["figure"] for row in rows if not row["definition"].strip()] == []


@pytest.fixture
def february(data):
    """The previous period (Jan 29 – Feb 28) given something of everything:
    lead lx (paid search, created Jan 15, touched then) became a customer on
    Feb 12 with deal O6 (800, created Feb 2, won Feb 12: 10 days); MQLs x and
    y on Feb 10 (created that day, Ann's), contacted after 1 h and 3 h (due
    2 h); x accepted on Feb 11."""
    lx = make_lead(source_channel=Channel.PAID_SEARCH, created_at=at(1, 15))
    make_touchpoint(lx, occurred_at=at(1, 15), channel=Channel.PAID_SEARCH, campaign=data["search"])
    Opportunity.objects.create(
        name="O6", created_at=at(2, 2), amount=Decimal(800), stage="won",
        closed_on=date(2026, 2, 12), owner=data["rep_a"], source_lead=lx,
        source_channel=Channel.PAID_SEARCH, is_marketing_sourced=True,
    )  # fmt: skip
    LeadStageChange.objects.create(lead=lx, from_stage="opportunity", to_stage="customer",
                                   changed_at=at(2, 12, 17))  # fmt: skip
    for hours in (1, 3):
        mql_at = at(2, 10, 9)
        lead = make_lead(
            created_at=at(2, 10, 8), owner=data["rep_a"], mql_at=mql_at, sla_version=data["sla"],
            response_due_at=mql_at + timedelta(hours=2),
            first_contact_at=mql_at + timedelta(hours=hours),
        )  # fmt: skip
        LeadStageChange.objects.create(lead=lead, from_stage="new", to_stage="mql",
                                       changed_at=mql_at)  # fmt: skip
        if hours == 1:
            LeadStageChange.objects.create(lead=lead, from_stage="mql", to_stage="sal",
                                           actor=data["rep_a"], changed_at=at(2, 11))  # fmt: skip
    reporting_refresh()
    return data


def test_every_figure_compares_with_the_previous_period(february):
    result = kpis.dashboard(report(), now=at(4, 1))
    figures = result["figures"]
    assert [f.key for f in result["figure_list"] if f.previous is None] == []
    # Sourced share: March 3000 of 6000; before, O6's 800 of 500 + 700 + 800.
    assert figures["sourced_share"].value == pytest.approx(50)
    assert figures["sourced_share"].previous == pytest.approx(40)
    assert figures["sourced_share"].change == pytest.approx(10)  # points
    # p90 to first contact: March 3.6 h (see above); before, 1 h and 3 h: 1 + 0.9 × 2.
    assert figures["first_contact_p90"].value == pytest.approx(3.6)
    assert figures["first_contact_p90"].previous == pytest.approx(2.8)
    assert figures["first_contact_p90"].trend == "bad"
    # Within SLA before: x (1 h, due 2 h) yes, y (3 h) no.
    assert figures["first_contact_within_sla"].previous == pytest.approx(50)
    # MQLs against the commitment: 4 of 310; before, 3 (February's and x, y)
    # of Jan 29–31 (3 × 310/31) + February (310).
    assert result["commitment"] == pytest.approx(310)
    assert result["prev_commitment"] == pytest.approx(340)
    assert figures["mql_commitment"].value == pytest.approx(400 / 310)
    assert figures["mql_commitment"].previous == pytest.approx(300 / 340)
    assert figures["acceptance_rate"].previous == pytest.approx(100)  # x accepted
    # CAC, LTV, LTV:CAC before: lx, 3100 spend (Jan 29–31 300 + February 2800), 800 won.
    assert figures["cac"].previous == Decimal(3100)
    assert figures["ltv"].previous == Decimal(800)
    assert figures["ltv_cac"].previous == pytest.approx(800 / 3100)
    assert figures["ltv_cac"].rows == "new_customers"

    # The funnel of the previous cohort (created Jan 29 – Feb 28): l1 (Feb 1,
    # customer), February's MQL, x and y; x accepted.
    previous = {s["key"]: s["previous"] for s in result["funnel"]["stages"]}
    assert previous["created"]["reached"] == 4
    assert previous["mql"]["reached"] == 3
    assert previous["mql"]["conversion"] == pytest.approx(75)
    assert previous["mql"]["median_days"] == pytest.approx(1 / 24)  # x, y: 8:00 -> 9:00
    assert previous["sal"]["reached"] == 1
    assert previous["sal"]["conversion"] == pytest.approx(100 / 3)
    assert previous["customer"]["reached"] == 1
    current = {s["key"]: s["reached"] for s in result["funnel"]["stages"]}
    assert current["created"] == 4 and current["sal"] == 2  # unchanged by the previous cohort

    # Sales cycle by channel: paid search won O6 before (10 days); outbound nothing.
    cycle = {row["source_channel"]: row for row in result["cycle_by_channel"]}
    assert cycle[Channel.PAID_SEARCH]["previous"] == {
        "deals": 1, "revenue": Decimal(800), "median_days": 10, "mean_days": 10}  # fmt: skip
    assert cycle[Channel.PAID_SEARCH]["deals"] == 1  # O1
    assert cycle[Channel.OUTBOUND]["previous"]["deals"] == 0
    assert cycle[Channel.OUTBOUND]["previous"]["median_days"] is None

    # CAC and LTV by channel: the channel's previous period beside it.
    search = next(
        r for r in result["economics"]["cur"].channels if r.channel == Channel.PAID_SEARCH
    )
    assert (search.previous.spend, search.previous.customers) == (Decimal(3100), 1)
    assert (search.previous.cac, search.previous.ltv) == (Decimal(3100), Decimal(800))


def test_the_dashboard_shows_the_previous_period_in_every_table(february, client_for):
    client = client_for(february["rep_a"])
    params = {"period": "custom", "start": "2026-03-01", "end": "2026-03-31"}
    body = client.get(reverse("reporting:dashboard"), params).content.decode()

    def by_label(label):
        return {row[0]: row[1:] for row in table_rows(body, label)}

    funnel = by_label("Funnel by stage")
    assert funnel["Lead created"][0] == "4 vs 4"
    assert funnel["MQL"] == ["4 vs 3", "100.0% (4) vs 75.0%", "0 d vs 0 d"]
    assert funnel["Accepted by sales (SAL)"][:2] == ["2 vs 1", "50.0% (2) vs 33.3%"]
    cycle = by_label("Sales cycle by source channel")
    assert cycle["Paid search"] == ["1 vs 1", "$1,000 vs $800", "15 d vs 10 d", "15 d vs 10 d"]
    economics = by_label("CAC and LTV by channel")
    assert economics["Paid search"] == [
        "$3,100 vs $3,100", "1 vs 1", "$3,100 vs $3,100", "$1,000 vs $800", "0.3× vs 0.3×"]  # fmt: skip
    for key in ("sourced_share", "first_contact_p90", "mql_commitment", "ltv_cac"):
        text = element_text(body, f"figure-{key}")
        assert "vs " in text and "no comparison" not in text, key
    assert "vs 2.8 h" in element_text(body, "figure-first_contact_p90")
    assert "vs 40.0%" in element_text(body, "figure-sourced_share")
    assert "vs 0.9%" in element_text(body, "figure-mql_commitment")


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


def test_funnel_stages_cycle_channels_and_ltv_cac_link_to_their_rows(data, client_for):
    client = client_for(data["rep_a"])
    params = {"period": "custom", "start": "2026-03-01", "end": "2026-03-31"}
    body = client.get(reverse("reporting:dashboard"), params).content.decode()
    hrefs = links(body)

    # Each funnel stage the March cohort reached opens those leads.
    funnel_links = sorted(h for h in hrefs if h.startswith("/reporting/rows/funnel/"))
    reached = {"created": 4, "mql": 4, "sal": 2, "opportunity": 1}
    assert len(funnel_links) == len(reached)
    for stage, count in reached.items():
        href = next(h for h in funnel_links if h.endswith(f"stage={stage}"))
        assert "period=custom&start=2026-03-01&end=2026-03-31" in href
        spec = selectors.figure_rows("funnel", report(), {"stage": stage})
        assert spec.queryset.count() == count, stage
        page = client.get(href).content.decode()
        assert len(table_rows(page, spec.title)) == count, stage
    accepted = selectors.figure_rows("funnel", report(), {"stage": "sal"})
    a, b, _, _ = data["march_leads"]
    assert {row.lead_id for row in accepted.queryset} == {a.pk, b.pk}
    assert "Accepted by sales (SAL)" in [column.label for column in accepted.columns]
    # The customer stage: none of March's new leads yet (l1 was created in February).
    assert selectors.figure_rows("funnel", report(), {"stage": "customer"}).queryset.count() == 0

    # Sales cycle by channel: O1 (paid search) and O4 (outbound).
    cycle_links = [h for h in hrefs if h.startswith("/reporting/rows/sales_cycle/")]
    assert any(h.endswith("channel=paid_search") for h in cycle_links)
    assert any(h.endswith("channel=outbound") for h in cycle_links)
    for channel, name in ((Channel.PAID_SEARCH, "O1"), (Channel.OUTBOUND, "O4")):
        spec = selectors.figure_rows("sales_cycle", report(), {"channel": channel})
        assert [o.name for o in spec.queryset] == [name]
        page = client.get(next(h for h in cycle_links if h.endswith(f"channel={channel}")))
        rows = table_rows(page.content.decode(), spec.title)
        assert [row[0] for row in rows] == [name]
    assert selectors.figure_rows("sales_cycle", report(), {"channel": ""}).queryset.count() == 0

    # LTV : CAC opens the new customers it divides (l1).
    ltv_cac = links(body, "figure-ltv_cac")
    assert ltv_cac and ltv_cac[0].startswith(reverse("reporting:rows", args=["new_customers"]))
    # The conversion rows show when each lead entered every stage.
    conversion = selectors.figure_rows("conversion", report(), {})
    labels = [column.label for column in conversion.columns]
    for stage in ("MQL", "Accepted by sales (SAL)", "Qualified (SQL)", "Opportunity", "Customer"):
        assert stage in labels
    page = client.get(reverse("reporting:rows", args=["conversion"]), params).content.decode()
    converted = [row for row in table_rows(page, "Leads created") if row[0] == str(a)]
    assert converted and converted[0][labels.index("Opportunity")] == "Mar 12, 2026 12:00"
    # Every figure card links to its rows.
    for figure in kpis.dashboard(report())["figure_list"]:
        assert figure.rows, figure.key
        assert links(body, f"figure-{figure.key}"), figure.key
