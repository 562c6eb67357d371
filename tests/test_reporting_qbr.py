"""The quarterly business review of Q3 2026 on hand-made data: SLA
performance per version and month, the KPIs against Q2, win/loss themes and
coverage, goal attainment, open action items and last quarter's commitment.

    SLA v1, in force since Jan 1, 2026: 90 MQLs a month, 50% acceptance,
    retrospectives within 14 days for deals above $5,000.
    Q3: MQLs on Jul 6, 7, 8 (due 1 h; contacted after 0.5 h, 0.5 h, 2 h);
        the first two accepted, the third rejected (with a reason).
        D1 won 20,000 on Aug 10 (reviewed Aug 15: on time; pricing and
        product fit helped), D2 lost 10,000 on Sep 5 (reviewed Sep 30: late;
        pricing hurt), D3 won 8,000 on Sep 20 (not reviewed).
    Q2: one MQL on May 4 (accepted); D4 won 5,000 on May 10 (not above the
        threshold).
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from config import roles
from leads.models import LeadStageChange
from reporting.models import ActionItem, QuarterlyReview, SharedGoal
from reporting.rollups import reporting_refresh
from sla.models import SlaVersion
from tests.factories import make_account, make_lead, reason
from tests.page_text import parse, table_rows
from tests.sla_factories import make_sla
from tests.winloss_factories import make_action_item, make_closed_deal, make_retrospective


def at(month, day, hour=9):
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def quarter(make_user, manager, taxonomy):
    rep = make_user("ann", roles.SALES_REP, first_name="Ann")
    sla = make_sla(publish=False, mql_commitment_per_month=90, min_acceptance_rate=50,
                   retro_amount_threshold=Decimal(5000), retro_due_days=14)  # fmt: skip
    SlaVersion.objects.filter(pk=sla.pk).update(status="published", published_at=at(1, 1, 0))
    sla.refresh_from_db()

    def mql(when, contact_hours, decision=None):
        lead = make_lead(owner=rep, sla_version=sla, created_at=when, mql_at=when,
                         response_due_at=when + timedelta(hours=1),
                         first_contact_at=when + timedelta(hours=contact_hours))  # fmt: skip
        LeadStageChange.objects.create(lead=lead, from_stage="new", to_stage="mql",
                                       changed_at=when)  # fmt: skip
        if decision == "sal":
            LeadStageChange.objects.create(lead=lead, from_stage="mql", to_stage="sal",
                                           actor=rep, changed_at=when + timedelta(days=1))  # fmt: skip
        elif decision == "rejected":
            LeadStageChange.objects.create(lead=lead, from_stage="mql", to_stage="rejected",
                                           actor=rep, reason=reason("no-budget"),
                                           changed_at=when + timedelta(days=1))  # fmt: skip

    mql(at(7, 6), 0.5, "sal")
    mql(at(7, 7), 0.5, "sal")
    mql(at(7, 8), 2, "rejected")
    mql(at(5, 4), 0.5, "sal")

    def deal(stage, amount, closed_on):
        return make_closed_deal(stage=stage, amount=Decimal(amount), closed_on=closed_on,
                                owner=rep, account=make_account(),
                                created_at=at(closed_on.month, 1))  # fmt: skip

    d1 = deal("won", 20000, date(2026, 8, 10))
    d2 = deal("lost", 10000, date(2026, 9, 5))
    deal("won", 8000, date(2026, 9, 20))
    deal("won", 5000, date(2026, 5, 10))
    review = make_retrospective(opportunity=d1, held_on=date(2026, 8, 15),
                                drivers=[("pricing-packaging", "helped"),
                                         ("product-fit", "helped")])  # fmt: skip
    make_retrospective(opportunity=d2, held_on=date(2026, 9, 30),
                       drivers=[("pricing-packaging", "hurt")])  # fmt: skip
    make_action_item(review, owner=manager, title="Publish the three-year cost calculator",
                     due_on=date(2026, 10, 15), status=ActionItem.Status.IN_PROGRESS)  # fmt: skip
    make_action_item(review, owner=manager, title="An item already done",
                     status=ActionItem.Status.DONE,
                     closed_at=at(9, 1))  # fmt: skip
    SharedGoal.objects.create(title="$30k won in Q3", metric="won_revenue", target=30000,
                              starts_on=date(2026, 7, 1), ends_on=date(2026, 9, 30))  # fmt: skip
    QuarterlyReview.objects.create(quarter_start=date(2026, 4, 1), recorded_by=manager,
                                   improvement="Answer hand-raisers within the hour.")  # fmt: skip
    reporting_refresh()
    return {"sla": sla, "rep": rep}


def figure_cards(body: str) -> dict[str, str]:
    return {
        card.find("h3").text(): card.text()
        for card in parse(body).iter("article")
        if "figure" in card.attrs.get("class", "")
    }


def test_the_qbr_gathers_the_quarter(quarter, client_for, marketer):
    body = client_for(marketer).get(reverse("reporting:qbr", args=[2026, 3])).content.decode()
    assert "Quarterly business review: Q3 2026" in body

    # What both teams committed to at the last QBR.
    assert "What we committed to last quarter" in body
    assert "Answer hand-raisers within the hour." in body

    # The KPIs against Q2.
    cards = figure_cards(body)
    # Won: 20,000 + 8,000 against D4's 5,000 (+460%).
    assert cards["Won revenue"] == "Won revenue $28,000 ▲ 460% vs $5,000 Rows →"
    # Win rate: 2 of 3 against 1 of 1 (−33.3 points).
    assert cards["Win rate"].startswith("Win rate 66.7% ▼ 33.3 pts vs 100.0%")
    assert cards["MQLs"].startswith("MQLs 3 ▲ 200% vs 1")
    assert cards["Lead acceptance rate"].startswith(
        "Lead acceptance rate 66.7% ▼ 33.3 pts vs 100.0%"
    )
    # Within SLA: the 0.5 h contacts of July (2 of 3) against May's (1 of 1).
    assert cards["First contact within SLA"].startswith("First contact within SLA 66.7%")

    # SLA performance per version and month.
    sla = {row[1]: row for row in table_rows(body, "SLA performance per version and month")}
    assert sorted(sla) == ["Aug 2026", "Jul 2026", "Sep 2026"]
    july = sla["Jul 2026"]
    assert july[0] == quarter["sla"].label
    assert july[2] == "3 / 90 (3%)"
    assert july[3] == "67% / 50% met"
    assert july[4] == "67%" and july[5] == "30 min"  # median of 0.5, 0.5, 2 h
    assert july[8] == "100%"  # the rejection carries a reason
    # Retrospectives in time: D1 in August; D2 late and D3 missing in September.
    assert sla["Aug 2026"][9] == "100% (1/1)"
    assert sla["Sep 2026"][9] == "0% (0/2)"

    # Win/loss themes and coverage: D1 and D2 of the three deals due a review.
    page = parse(body)
    themes = page.find("section", **{"aria-labelledby": "themes-title"}).text()
    assert "1 won and 1 lost deals reviewed; 67% of the 3 deals due a review have one" in themes
    assert "(33% on time)" in themes
    wins, losses = (ol.text() for ol in page.find(
        "section", **{"aria-labelledby": "themes-title"}).iter("ol"))  # fmt: skip
    assert wins.startswith("Pricing and packaging (1 mention, 100% of reviews)")
    assert "Product fit (1 mention, 100% of reviews)" in wins
    assert losses == "Pricing and packaging (1 mention, 100% of reviews)"

    # Goal attainment: 28,000 of 30,000.
    goals = page.find("section", **{"aria-labelledby": "goals-title"}).text()
    assert "$30k won in Q3" in goals and "$28,000 of $30,000 (93%" in goals

    # Open action items only.
    actions = table_rows(body, "Open action items")
    assert [row[0] for row in actions] == ["Publish the three-year cost calculator"]
    assert actions[0][3:] == ["Oct 15, 2026", "In progress"]
