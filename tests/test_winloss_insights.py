"""Win/loss insights on hand-made data: driver weighting, breakdowns by
competitor, segment and quarter, coverage, due reviews; and query counts
that do not grow with the number of retrospectives."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reporting import winloss_selectors as selectors
from tests.factories import make_account, make_competitor
from tests.sla_factories import make_sla
from tests.winloss_factories import make_action_item, make_closed_deal, make_retrospective

pytestmark = pytest.mark.django_db

Q1 = (date(2026, 1, 1), date(2026, 3, 31))
TODAY = date(2026, 4, 15)


def deal(stage, closed_on, amount, segment, **fields):
    employees = {"enterprise": 5000, "mid_market": 500, "smb": 50}[segment]
    return make_closed_deal(
        stage=stage, closed_on=closed_on, amount=Decimal(amount),
        account=make_account(employees=employees), **fields,
    )  # fmt: skip


def retro(opportunity, drivers, *, held_after=7, **fields):
    return make_retrospective(
        opportunity=opportunity,
        drivers=drivers,
        held_on=opportunity.closed_on + timedelta(days=held_after),
        **fields,
    )


@pytest.fixture
def quarter(rep):
    """Q1 2026: four won and three lost retrospectives, one eligible deal not
    reviewed, one below the threshold; and a retrospective in Q4 2025."""
    make_sla(retro_amount_threshold=Decimal(5000), retro_due_days=14)
    northwind, contoso = make_competitor("Northwind"), make_competitor("Contoso")
    H, X = "helped", "hurt"
    retro(
        deal("won", date(2026, 1, 10), 20000, "enterprise"),
        competitor=northwind,
        drivers=[("product-fit", H), ("pricing-packaging", H), ("sales-process", X)],
    )
    retro(
        deal("won", date(2026, 2, 5), 8000, "mid_market"),
        held_after=25,
        drivers=[("product-fit", H), ("relationship", H)],
    )
    retro(
        deal("won", date(2026, 3, 20), 9000, "enterprise"),
        competitor=contoso,
        drivers=[("pricing-packaging", X), ("product-fit", H)],
    )
    retro(deal("won", date(2026, 2, 2), 3000, "smb"), drivers=[("relationship", H)])
    retro(
        deal("lost", date(2026, 2, 15), 30000, "enterprise"),
        loss_type="competitor",
        competitor=northwind,
        drivers=[("pricing-packaging", X), ("competitive-positioning", X), ("product-fit", H)],
    )
    retro(
        deal("lost", date(2026, 3, 1), 12000, "smb"),
        loss_type="no_decision",
        drivers=[("timing", X), ("pricing-packaging", X)],
    )
    retro(
        deal("lost", date(2026, 1, 20), 7000, "mid_market"),
        loss_type="unknown",
        drivers=[("messaging", X), ("pricing-packaging", H)],
    )
    due = deal("lost", date(2026, 3, 10), 15000, "enterprise", owner=rep, name="Acme refresh")
    deal("won", date(2026, 1, 3), 4000, "smb")  # below the threshold: not eligible
    retro(deal("won", date(2025, 12, 20), 50000, "enterprise"),
          drivers=[("pricing-packaging", H), ("timing", H)])  # fmt: skip
    return {"due": due}


def scores(rows):
    return [(s.category.code, s.score, s.helped, s.hurt, s.share) for s in rows]


def test_themes_weight_mentions_by_sentiment_in_the_outcomes_direction(quarter):
    themes = selectors.winloss_themes(start=Q1[0], end=Q1[1])
    assert (themes["won"], themes["lost"]) == (4, 3)
    # Wins: helped − hurt. Product fit helped all three it appears in (3 of 4
    # won retrospectives); pricing helped once and hurt once (0: not a theme).
    assert scores(themes["wins"]) == [
        ("product-fit", 3, 3, 0, 75),
        ("relationship", 2, 2, 0, 50),
    ]
    # Losses: hurt − helped. Pricing hurt twice, helped once (1, in all three
    # lost retrospectives); ties go to more mentions, then the category order.
    assert scores(themes["losses"]) == [
        ("pricing-packaging", 1, 1, 2, 100),
        ("competitive-positioning", 1, 0, 1, 33),
        ("messaging", 1, 0, 1, 33),
        ("timing", 1, 0, 1, 33),
    ]
    assert [s.category.code for s in selectors.winloss_themes(
        start=Q1[0], end=Q1[1], limit=2)["losses"]] == ["pricing-packaging",
                                                        "competitive-positioning"]  # fmt: skip


def test_insights_rank_every_category_and_count_outcomes(quarter):
    data = selectors.insights(start=Q1[0], end=Q1[1], today=TODAY)
    assert (data["won"], data["lost"], data["total"]) == (4, 3, 7)
    assert dict(data["loss_types"]) == {
        "Lost to a competitor": 1,
        "No decision (status quo)": 1,
        "Unknown": 1,
    }
    won = {s.category.code: s.score for s in data["drivers"]["won"]}
    assert won == {
        "product-fit": 3, "relationship": 2, "pricing-packaging": 0,
        "competitive-positioning": 0, "messaging": 0, "timing": 0, "sales-process": -1,
    }  # fmt: skip
    assert [s.category.code for s in data["drivers"]["won"]][:2] == ["product-fit", "relationship"]
    assert data["drivers"]["lost"][-1].category.code == "product-fit"  # helped a loss: −1
    assert scores(data["themes"]["losses"])[0] == ("pricing-packaging", 1, 1, 2, 100)


def test_insights_by_competitor_segment_and_quarter(quarter):
    data = selectors.insights(start=Q1[0], end=Q1[1], today=TODAY)
    by_competitor = {b.label: b for b in data["by_competitor"]}
    assert list(by_competitor) == ["Contoso", "Northwind", "No competitor named"]
    northwind = by_competitor["Northwind"]
    assert (northwind.won, northwind.lost, northwind.win_rate) == (1, 1, 50)
    assert [s.category.code for s in northwind.top_losses] == [
        "pricing-packaging", "competitive-positioning",
    ]  # fmt: skip
    assert [s.category.code for s in northwind.top_wins] == ["pricing-packaging", "product-fit"]
    none = by_competitor["No competitor named"]
    assert (none.won, none.lost) == (2, 2)

    by_segment = {b.label: (b.won, b.lost) for b in data["by_segment"]}
    assert by_segment == {"Enterprise": (2, 1), "Mid-market": (1, 1), "SMB": (1, 1)}

    [q1] = data["by_quarter"]
    assert (q1.label, q1.won, q1.lost, q1.eligible, q1.reviewed) == ("Q1 2026", 4, 3, 7, 6)
    assert q1.coverage_percent == 86


def test_quarters_without_retrospectives_still_show(quarter):
    data = selectors.insights(start=date(2025, 10, 1), end=Q1[1], today=TODAY)
    assert [(b.label, b.total) for b in data["by_quarter"]] == [("Q4 2025", 1), ("Q1 2026", 7)]
    assert selectors.quarters_between(date(2025, 11, 5), date(2026, 4, 1)) == [
        date(2025, 10, 1), date(2026, 1, 1), date(2026, 4, 1),
    ]  # fmt: skip
    assert selectors.quarter_bounds(date(2026, 11, 30)) == (date(2026, 10, 1), date(2026, 12, 31))


def test_coverage_counts_eligible_deals_reviewed_and_on_time(quarter):
    cover = selectors.coverage(start=Q1[0], end=Q1[1], today=TODAY)
    # Seven deals above $5,000 closed in Q1; six have a retrospective, five of
    # them held within 14 days; the unreviewed one is past due.
    assert {k: cover[k] for k in ("eligible", "reviewed", "on_time", "overdue", "percent")} == {
        "eligible": 7, "reviewed": 6, "on_time": 5, "overdue": 1, "percent": 86,
    }  # fmt: skip
    assert cover["on_time_percent"] == 71


def test_coverage_without_an_sla_is_empty():
    cover = selectors.coverage(start=Q1[0], end=Q1[1])
    assert cover["eligible"] == 0 and cover["percent"] is None


def test_reviews_due_in_the_look_back(quarter, rep, manager):
    due = list(selectors.reviews_due(today=TODAY))
    assert due == [quarter["due"]]
    assert due[0].review_due_on == date(2026, 3, 24)
    assert list(selectors.reviews_due(owner=rep, today=TODAY)) == [quarter["due"]]
    assert not selectors.reviews_due(owner=manager, today=TODAY).exists()
    assert not selectors.reviews_due(today=date(2026, 9, 1)).exists()  # out of the look-back


def test_the_deal_page_status(quarter):
    status = selectors.opportunity_review(quarter["due"], today=TODAY)
    assert status["eligible"] and status["overdue"] and status["retrospective"] is None
    assert status["due_on"] == date(2026, 3, 24)


def test_open_action_items_are_counted(quarter, rep):
    retrospective = selectors.retrospectives_filtered(outcome="lost").first()
    make_action_item(retrospective, owner=rep, due_on=date(2026, 4, 1))
    make_action_item(retrospective, owner=rep, due_on=date(2026, 5, 1))
    data = selectors.insights(start=Q1[0], end=Q1[1], today=TODAY)
    assert (data["open_actions"], data["overdue_actions"]) == (2, 1)
    assert [i.due_on for i in selectors.action_items_open()] == [date(2026, 4, 1), date(2026, 5, 1)]


def _queries(function) -> int:
    with CaptureQueriesContext(connection) as queries:
        function()
    return len(queries)


def test_query_counts_do_not_grow_with_retrospectives(rep):
    make_sla(retro_amount_threshold=Decimal(5000))
    competitors = [make_competitor(f"Rival {n}") for n in range(3)]

    def add(count):
        for n in range(count):
            stage = "won" if n % 2 else "lost"
            retrospective = retro(
                deal(stage, date(2026, 1 + n % 3, 1 + n), 6000 + n, ["enterprise", "smb"][n % 2]),
                competitor=competitors[n % 3],
                loss_type="" if stage == "won" else "unknown",
                drivers=[("pricing-packaging", "hurt"), ("timing", "helped")],
            )
            make_action_item(retrospective, owner=rep)

    def list_rows():
        return [
            (
                r.opportunity.account.name,
                [d.category.name for d in r.drivers.all()],
                [p.user.username for p in r.participant_rows.all()],
            )
            for r in selectors.retrospectives_filtered()
        ]

    def calls():
        return {
            "insights": _queries(lambda: selectors.insights(start=Q1[0], end=Q1[1])),
            "themes": _queries(lambda: selectors.winloss_themes(start=Q1[0], end=Q1[1])),
            "coverage": _queries(lambda: selectors.coverage(start=Q1[0], end=Q1[1])),
            "open": _queries(lambda: [str(i.target_label) for i in selectors.action_items_open()]),
            "list": _queries(list_rows),
            "due": _queries(lambda: [d.account.name for d in selectors.reviews_due(today=TODAY)]),
        }

    add(2)
    small = calls()
    add(12)
    assert calls() == small
    assert small["insights"] <= 9
