"""The SLA scorecard on a small hand-made data set: both sides of the
agreement per SLA version and month, and per rep and team, with the segment
and team filters; every number is worked out by hand below.

The agreement: v1 in force Jan 1 – Feb 28, 2026 (280 MQLs a month, 100 of
them enterprise; 70% acceptance; retrospectives within 14 days for deals
above $5,000), v2 from Mar 1 (310 MQLs, no enterprise figure; 60%; within 7
days above $10,000). The period: Feb 1 – Mar 31, 2026, read on Apr 1.

Leads (owner, SLA, segment, MQL, response due / first contact, decisions):

    L1 ann v1 enterprise  Feb 3   due 1 h, contacted 0.5 h   accepted Feb 4 (ann)
    L2 ann v1 smb         Feb 5   due 1 h, contacted 3 h     rejected Feb 6 (ann, reason)
    L3 bob v1 enterprise  Feb 10  due 24 h, never            rejected Feb 12 (bob, no reason)
                                  breach Feb 11: manager told, reassigned Feb 12
    L4 cal v1 smb         Feb 27  due 24 h, contacted 2 h    accepted Mar 2 (cal)
    L5 bob v2 enterprise  Mar 3   due 1 h, contacted 4 h     accepted Mar 4, disqualified
                                  breach Mar 3: manager told  Mar 10 (bob, reason)
    L6 ann v2 smb         Mar 20  due 24 h, never; breach Mar 21 (not escalated yet)

Closed deals (owner, segment, outcome, amount, close; retrospective):

    D1 ann enterprise lost  6,000 Feb 10 (v1: due Feb 24)  held Feb 20: on time
    D2 bob smb        won   4,000 Feb 15 (below v1's threshold)
    D3 bob enterprise won  12,000 Mar 5  (v2: due Mar 12)  held Mar 20: late
    D4 ann enterprise lost  8,000 Mar 6  (below v2's threshold, above v1's)
    D5 cal smb        won  15,000 Mar 28 (v2: due Apr 4)   none yet: clock running
    D6 cal smb        won   7,000 Feb 28 (v1: due Mar 14)  none: missed
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from config import roles
from leads.models import LeadStageChange
from reporting import selectors
from reporting.periods import Period
from reporting.rollups import reporting_refresh
from sla.models import Breach, SlaVersion, VersionStatus
from tests.factories import make_account, make_lead, make_team, reason
from tests.page_text import table_rows
from tests.sla_factories import make_sla
from tests.winloss_factories import make_closed_deal, make_retrospective

PERIOD = Period("custom", date(2026, 2, 1), date(2026, 3, 31), "Feb – Mar 2026")
TODAY = date(2026, 4, 1)
FEB, MAR = date(2026, 2, 1), date(2026, 3, 1)


def at(month, day, hour=9):
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def agreement(make_user, taxonomy):
    ann = make_user("ann", roles.SALES_REP, first_name="Ann")
    bob = make_user("bob", roles.SALES_REP, first_name="Bob")
    cal = make_user("cal", roles.SALES_REP, first_name="Cal")
    east = make_team("East", members=[ann, cal])
    west = make_team("West", members=[bob], region="West")
    v1 = make_sla(publish=False, mql_commitment_per_month=280, mql_commitment_enterprise=100,
                  min_acceptance_rate=70, retro_amount_threshold=Decimal(5000),
                  retro_due_days=14)  # fmt: skip
    v2 = make_sla(publish=False, mql_commitment_per_month=310, min_acceptance_rate=60,
                  retro_amount_threshold=Decimal(10000), retro_due_days=7)  # fmt: skip
    SlaVersion.objects.filter(pk=v1.pk).update(
        status=VersionStatus.SUPERSEDED, published_at=at(1, 1, 0), superseded_at=at(3, 1, 0)
    )
    SlaVersion.objects.filter(pk=v2.pk).update(
        status=VersionStatus.PUBLISHED, published_at=at(3, 1, 0)
    )

    def lead(owner, version, segment, mql_at, due_hours, contact_hours=None):
        row = make_lead(
            owner=owner, sla_version=version, segment=segment, created_at=mql_at,
            mql_at=mql_at, response_due_at=mql_at + timedelta(hours=due_hours),
            first_contact_at=None if contact_hours is None
            else mql_at + timedelta(hours=contact_hours),
        )  # fmt: skip
        LeadStageChange.objects.create(lead=row, from_stage="new", to_stage="mql",
                                       changed_at=mql_at)  # fmt: skip
        return row

    def change(lead_row, from_stage, to_stage, when, actor, code=None):
        LeadStageChange.objects.create(
            lead=lead_row, from_stage=from_stage, to_stage=to_stage, changed_at=when, actor=actor,
            reason=reason(code) if code else None,
        )  # fmt: skip

    def breach(lead_row, version, owner, when, *, notified=None, reassigned=None):
        Breach.objects.create(lead=lead_row, sla_version=version, owner=owner,
                              due_at=lead_row.response_due_at, breached_at=when,
                              manager_notified_at=notified, reassigned_at=reassigned)  # fmt: skip

    l1 = lead(ann, v1, "enterprise", at(2, 3), 1, 0.5)
    change(l1, "mql", "sal", at(2, 4), ann)
    l2 = lead(ann, v1, "smb", at(2, 5), 1, 3)
    change(l2, "mql", "rejected", at(2, 6), ann, "no-budget")
    l3 = lead(bob, v1, "enterprise", at(2, 10), 24)
    change(l3, "mql", "rejected", at(2, 12), bob)
    breach(l3, v1, bob, at(2, 11), notified=at(2, 11), reassigned=at(2, 12))
    l4 = lead(cal, v1, "smb", at(2, 27), 24, 2)
    change(l4, "mql", "sal", at(3, 2), cal)
    l5 = lead(bob, v2, "enterprise", at(3, 3), 1, 4)
    change(l5, "mql", "sal", at(3, 4), bob)
    change(l5, "sal", "disqualified", at(3, 10), bob, "no-budget")
    breach(l5, v2, bob, at(3, 3, 10), notified=at(3, 3, 10))
    l6 = lead(ann, v2, "smb", at(3, 20), 24)
    breach(l6, v2, ann, at(3, 21))

    accounts = {"enterprise": make_account(employees=5000), "smb": make_account(employees=50)}

    def deal(owner, segment, stage, amount, closed_on, held_on=None):
        row = make_closed_deal(stage=stage, amount=Decimal(amount), closed_on=closed_on,
                               owner=owner, account=accounts[segment])  # fmt: skip
        if held_on:
            make_retrospective(opportunity=row, held_on=held_on)
        return row

    deal(ann, "enterprise", "lost", 6000, date(2026, 2, 10), held_on=date(2026, 2, 20))
    deal(bob, "smb", "won", 4000, date(2026, 2, 15))
    deal(bob, "enterprise", "won", 12000, date(2026, 3, 5), held_on=date(2026, 3, 20))
    deal(ann, "enterprise", "lost", 8000, date(2026, 3, 6))
    deal(cal, "smb", "won", 15000, date(2026, 3, 28))
    deal(cal, "smb", "won", 7000, date(2026, 2, 28))
    reporting_refresh()
    return {"v1": v1, "v2": v2, "east": east, "west": west, "ann": ann, "bob": bob, "cal": cal}


def by_version(rows):
    return {(row["version"].pk if row["version"] else None, row["month"]): row for row in rows}


def test_scorecard_by_version_and_month(agreement, django_assert_max_num_queries):
    v1, v2 = agreement["v1"].pk, agreement["v2"].pk
    # Versions, stage flows, response times, breaches, retrospectives.
    with django_assert_max_num_queries(5):
        rows = by_version(selectors.scorecard_by_version(PERIOD, today=TODAY))
    assert sorted(rows) == [(v1, FEB), (v1, MAR), (v2, MAR)]

    feb = rows[(v1, FEB)]
    # Marketing: L1–L4 against 28 days × 280/28; acceptance L1 of L1, L2, L3.
    assert feb["mqls"] == 4
    assert feb["commitment"] == pytest.approx(280)
    assert feb["mql_share"] == pytest.approx(100 * 4 / 280)
    assert (feb["accepted"], feb["rejected"]) == (1, 2)
    assert feb["acceptance_rate"] == pytest.approx(100 / 3)
    assert feb["acceptance_target"] == 70 and feb["acceptance_met"] is False
    # Sales: L1 and L4 in time; L2 late; L3's clock ran out. Median of 0.5, 3, 2 h.
    assert (feb["contacted"], feb["within"], feb["resolved"]) == (3, 2, 4)
    assert feb["within_share"] == pytest.approx(50)
    assert feb["median_hours"] == pytest.approx(2)
    assert (feb["breaches"], feb["notified"], feb["reassigned"]) == (1, 1, 1)  # L3
    # Feedback: L2 (reason) and L3 (none) dropped; D1 reviewed on time, D6 missed.
    assert (feb["dropped"], feb["dropped_with_reason"]) == (2, 1)
    assert feb["feedback_share"] == pytest.approx(50)
    assert [feb[k] for k in selectors.RETRO_COUNTS] == [2, 1, 1, 2]
    assert feb["retro_share"] == pytest.approx(50) and feb["retro_coverage"] == pytest.approx(50)

    # v1 in March: only L4's acceptance (qualified under v1 in February); v1
    # was not in force, so no commitment.
    late = rows[(v1, MAR)]
    assert (late["mqls"], late["accepted"], late["rejected"]) == (0, 1, 0)
    assert late["commitment"] is None and late["mql_share"] is None
    assert late["acceptance_rate"] == pytest.approx(100) and late["acceptance_met"] is True
    assert late["breaches"] == 0 and late["retro_eligible"] == 0

    mar = rows[(v2, MAR)]
    assert mar["mqls"] == 2 and mar["commitment"] == pytest.approx(310)
    assert mar["mql_share"] == pytest.approx(100 * 2 / 310)
    assert mar["acceptance_rate"] == pytest.approx(100) and mar["acceptance_target"] == 60
    # L5 late (4 h, due 1 h), L6's clock ran out.
    assert (mar["contacted"], mar["within"], mar["resolved"]) == (1, 0, 2)
    assert mar["within_share"] == 0 and mar["median_hours"] == pytest.approx(4)
    assert (mar["breaches"], mar["notified"], mar["reassigned"]) == (2, 1, 0)
    assert mar["feedback_share"] == pytest.approx(100)  # L5's disqualification
    # D3 reviewed late; D5 still has until Apr 4; D4 is below v2's threshold.
    assert [mar[k] for k in selectors.RETRO_COUNTS] == [2, 1, 0, 1]
    assert mar["retro_share"] == 0 and mar["retro_coverage"] == pytest.approx(50)
    # Once D5's due date has passed, it counts as missed.
    later = by_version(selectors.scorecard_by_version(PERIOD, today=date(2026, 4, 10)))
    assert later[(v2, MAR)]["retro_resolved"] == 2


def test_scorecard_by_rep_and_team(agreement, django_assert_max_num_queries):
    # Stage flows, response times, breaches, versions, retrospectives, team
    # memberships (every rep has one: no lookup of other users).
    with django_assert_max_num_queries(6):
        people = selectors.scorecard_by_rep(PERIOD, today=TODAY)
    reps = {row["name"]: row for row in people["reps"]}
    assert sorted(reps) == ["Ann", "Bob", "Cal"]
    ann, bob, cal = reps["Ann"], reps["Bob"], reps["Cal"]
    # Ann: L1, L2, L6; accepted L1, rejected L2 (with a reason).
    assert (ann["mqls"], ann["accepted"], ann["rejected"]) == (3, 1, 1)
    assert ann["acceptance_rate"] == pytest.approx(50)
    assert (ann["contacted"], ann["within"], ann["resolved"]) == (2, 1, 3)
    assert ann["median_hours"] == pytest.approx(1.75)  # 0.5 and 3 h
    assert (ann["breaches"], ann["notified"], ann["reassigned"]) == (1, 0, 0)  # L6
    assert ann["feedback_share"] == pytest.approx(100)
    assert [ann[k] for k in selectors.RETRO_COUNTS] == [1, 1, 1, 1]  # D1 (D4 below)
    # Bob: L3 and L5; accepted L5, rejected L3; dropped L3 (no reason), L5 (reason).
    assert (bob["mqls"], bob["accepted"], bob["rejected"]) == (2, 1, 1)
    assert (bob["contacted"], bob["within"], bob["resolved"]) == (1, 0, 2)
    assert (bob["breaches"], bob["notified"], bob["reassigned"]) == (2, 2, 1)
    assert bob["feedback_share"] == pytest.approx(50)
    assert [bob[k] for k in selectors.RETRO_COUNTS] == [1, 1, 0, 1]  # D3, late
    # Cal: L4, accepted in March; D5 (running) and D6 (missed).
    assert (cal["mqls"], cal["accepted"], cal["within_share"]) == (1, 1, 100)
    assert [cal[k] for k in selectors.RETRO_COUNTS] == [2, 0, 0, 1]
    assert cal["retro_share"] == 0 and cal["retro_coverage"] == 0

    teams = {row["name"]: row for row in people["teams"]}
    east, west = teams["East"], teams["West"]
    assert east["reps"] == 2 and west["reps"] == 1
    assert (east["mqls"], east["accepted"], east["rejected"]) == (4, 2, 1)
    assert east["acceptance_rate"] == pytest.approx(200 / 3)
    assert (east["within"], east["resolved"]) == (2, 4)
    assert (east["breaches"], east["notified"]) == (1, 0)
    assert [east[k] for k in selectors.RETRO_COUNTS] == [3, 1, 1, 2]
    assert east["retro_share"] == pytest.approx(50)
    assert (west["mqls"], west["breaches"], west["reassigned"]) == (2, 2, 1)
    assert west["within_share"] == 0 and west["feedback_share"] == pytest.approx(50)


def test_scorecard_team_filter(agreement):
    v1 = agreement["v1"].pk
    rows = by_version(selectors.scorecard_by_version(PERIOD, team=agreement["east"], today=TODAY))
    feb = rows[(v1, FEB)]
    # East (Ann, Cal): L1, L2, L4; no breach (L3 is Bob's); D1 and D6.
    assert (feb["mqls"], feb["accepted"], feb["rejected"]) == (3, 1, 1)
    assert feb["commitment"] is None  # marketing's commitment is not per team
    assert feb["breaches"] == 0
    assert [feb[k] for k in selectors.RETRO_COUNTS] == [2, 1, 1, 2]
    people = selectors.scorecard_by_rep(PERIOD, team=agreement["west"], today=TODAY)
    assert [row["name"] for row in people["reps"]] == ["Bob"]


def test_scorecard_segment_filter(agreement):
    v1, v2 = agreement["v1"].pk, agreement["v2"].pk
    rows = by_version(selectors.scorecard_by_version(PERIOD, segment="enterprise", today=TODAY))
    # Enterprise: L1, L3 (v1), L5 (v2); deals D1, D3 (D4 below the threshold).
    assert sorted(rows) == [(v1, FEB), (v2, MAR)]
    feb, mar = rows[(v1, FEB)], rows[(v2, MAR)]
    assert feb["mqls"] == 2 and feb["commitment"] == pytest.approx(100)  # v1's enterprise figure
    assert feb["mql_share"] == pytest.approx(2)
    assert feb["acceptance_rate"] == pytest.approx(50)
    assert (feb["within"], feb["resolved"], feb["breaches"]) == (1, 2, 1)
    assert [feb[k] for k in selectors.RETRO_COUNTS] == [1, 1, 1, 1]
    assert mar["mqls"] == 1 and mar["commitment"] is None  # v2 sets no enterprise figure
    assert (mar["within"], mar["resolved"], mar["breaches"]) == (0, 1, 1)
    assert [mar[k] for k in selectors.RETRO_COUNTS] == [1, 1, 0, 1]
    reps = {row["name"]: row for row in selectors.scorecard_by_rep(
        PERIOD, segment="smb", today=TODAY)["reps"]}  # fmt: skip
    # Small business: L2, L6 (Ann), L4 (Cal); D2 (below), D5, D6 (Cal).
    assert (reps["Ann"]["mqls"], reps["Ann"]["breaches"]) == (2, 1)
    assert reps["Cal"]["retro_eligible"] == 2
    assert "Bob" not in reps or reps["Bob"]["mqls"] == 0


def test_the_scorecard_page_applies_the_segment_and_shows_retrospectives(agreement, client_for):
    client = client_for(agreement["ann"])
    url = reverse("reporting:scorecard")
    params = {"period": "custom", "start": "2026-02-01", "end": "2026-03-31"}
    every = table_rows(
        client.get(url, params).content.decode(), "Scorecard by SLA version and month"
    )
    enterprise = table_rows(
        client.get(url, {**params, "segment": "enterprise"}).content.decode(),
        "Scorecard by SLA version and month",
    )
    feb_every = next(row for row in every if row[1] == "Feb 2026")
    feb_enterprise = next(row for row in enterprise if row[1] == "Feb 2026")
    assert feb_every[2:4] == ["4", "280"]
    assert feb_enterprise[2:4] == ["2", "100"]
    # The retrospectives column (read on the real today: every due date has passed).
    assert feb_every[-1].startswith("50% (1/2)") and "1 of 2 reviewed" in feb_every[-1]
    teams = table_rows(client.get(url, {**params, "segment": "enterprise"}).content.decode(),
                       "Scorecard by team")  # fmt: skip
    assert {row[0].split()[0]: row[1] for row in teams} == {"East": "1", "West": "2"}
    export = client.get(reverse("reporting:export", args=["scorecard"]),
                        {**params, "segment": "enterprise", "table": "teams"})  # fmt: skip
    lines = export.content.decode().splitlines()
    assert "retrospectives in time %" in lines[0]
    assert lines[1].startswith("East,1,1,")  # Ann alone has enterprise activity
