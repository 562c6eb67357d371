"""The attribution page's totals on a small hand-made data set (March 2026),
under U-shaped and first touch side by side: credit by channel, campaign
and content asset, ROI against spend, LTV by channel, the two seed answers,
and the weights stored with the results.

    Lead P (webinar; created Mar 2, 12:00):
      T1 Mar 1  webinar, campaign "Webinar A", asset "Buyer guide"   first touch
      T2 Mar 2  email, campaign "Nurture", asset "ROI calculator"    lead creation
      T3 Mar 5  email, campaign "Nurture", no asset                  opportunity creation
      T4 Mar 10 organic search, no campaign, no asset                (after OP1's creation)
      OP1 10,000, created Mar 6, won Mar 20; P a customer on Mar 20.
    Lead Q (paid search; created Mar 3): T5 Mar 3 paid search, asset "Buyer guide";
      OP2 4,000 (created Mar 8, won Mar 25) and OP3 2,000 (Mar 9, won Mar 28);
      Q a customer on Mar 25.
    Lead R (paid search, no touches): OP4 1,000 (Mar 10, won Mar 26); a customer on Mar 26.
    Spend in March: "Webinar A" 1,000, "Nurture" 500.

Pipeline paths end at the opportunity's creation: OP1's is T1, T2, T3;
revenue paths end with the win day: OP1's is T1–T4. U-shaped gives 40% to
the first touch and 40% to the lead creation touch, 20% shared by the others;
first touch gives it all to T1. Q's paths are T5 alone, R's are empty.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from leads.models import CampaignSpend, Channel, LeadStageChange, Opportunity
from reporting import selectors
from reporting.attribution import SCHEMES, Model
from reporting.models import AttributionCredit, AttributionScheme
from reporting.periods import Period, ReportFilter
from reporting.rollups import reporting_refresh
from tests.factories import make_asset, make_campaign, make_lead, make_touchpoint
from tests.page_text import element_text, table_rows

pytestmark = pytest.mark.django_db

MARCH = ReportFilter(period=Period("custom", date(2026, 3, 1), date(2026, 3, 31), "March 2026"))
MODELS = [Model.U_SHAPED, Model.FIRST_TOUCH]
U, FIRST = MODELS


def at(day, hour=10):
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def paths():
    webinar = make_campaign(name="Webinar A", channel=Channel.WEBINAR)
    nurture = make_campaign(name="Nurture", channel=Channel.EMAIL)
    CampaignSpend.objects.create(campaign=webinar, month=date(2026, 3, 1), amount=1000)
    CampaignSpend.objects.create(campaign=nurture, month=date(2026, 3, 1), amount=500)
    guide = make_asset(title="Buyer guide")
    calculator = make_asset(title="ROI calculator")

    def deal(name, lead, amount, created, won):
        Opportunity.objects.create(
            name=name, source_lead=lead, amount=Decimal(amount), created_at=at(created, 12),
            stage="won", closed_on=date(2026, 3, won), source_channel=lead.source_channel,
            is_marketing_sourced=True,
        )  # fmt: skip

    def customer(lead, day):
        LeadStageChange.objects.create(lead=lead, from_stage="opportunity", to_stage="customer",
                                       changed_at=at(day, 17))  # fmt: skip

    p = make_lead(source_channel=Channel.WEBINAR, created_at=at(2, 12))
    make_touchpoint(p, occurred_at=at(1), channel=Channel.WEBINAR, campaign=webinar, asset=guide)
    make_touchpoint(p, occurred_at=at(2), channel=Channel.EMAIL, campaign=nurture,
                    asset=calculator)  # fmt: skip
    make_touchpoint(p, occurred_at=at(5), channel=Channel.EMAIL, campaign=nurture)
    make_touchpoint(p, occurred_at=at(10), channel=Channel.ORGANIC_SEARCH)
    deal("OP1", p, 10000, 6, 20)
    customer(p, 20)
    q = make_lead(source_channel=Channel.PAID_SEARCH, created_at=at(3, 12))
    make_touchpoint(q, occurred_at=at(3), channel=Channel.PAID_SEARCH, asset=guide)
    deal("OP2", q, 4000, 8, 25)
    deal("OP3", q, 2000, 9, 28)
    customer(q, 25)
    r = make_lead(source_channel=Channel.PAID_SEARCH, created_at=at(4, 12))
    deal("OP4", r, 1000, 10, 26)
    customer(r, 26)
    reporting_refresh()
    return {"webinar": webinar, "nurture": nurture, "guide": guide, "calculator": calculator}


def credits(rows, kind="pipeline"):
    """{key: (U-shaped credit, first-touch credit)} of the rows with any credit."""
    return {
        row.key: tuple(getattr(row, kind)[m] for m in MODELS)
        for row in rows
        if any(getattr(row, kind)[m] for m in MODELS)
    }


def test_credit_by_channel_campaign_and_asset_under_two_models(paths):
    data = selectors.attribution(MARCH, models=MODELS)
    d = Decimal
    # OP1 under U-shaped: T1 4,000, T2 4,000, T3 2,000; first touch: T1 10,000.
    # OP2 + OP3: 6,000 to T5 under both.
    assert credits(data["channels"]) == {
        Channel.WEBINAR: (d(4000), d(10000)),
        Channel.EMAIL: (d(6000), d(0)),
        Channel.PAID_SEARCH: (d(6000), d(6000)),
    }
    # Revenue paths add T4 to OP1's: 20% shared by T3 and T4.
    assert credits(data["channels"], "revenue") == {
        Channel.WEBINAR: (d(4000), d(10000)),
        Channel.EMAIL: (d(5000), d(0)),
        Channel.ORGANIC_SEARCH: (d(1000), d(0)),
        Channel.PAID_SEARCH: (d(6000), d(6000)),
    }
    webinar, nurture = paths["webinar"].pk, paths["nurture"].pk
    assert credits(data["campaigns"]) == {
        webinar: (d(4000), d(10000)),
        nurture: (d(6000), d(0)),
        None: (d(6000), d(6000)),  # T5 has no campaign
    }
    assert credits(data["campaigns"], "revenue") == {
        webinar: (d(4000), d(10000)),
        nurture: (d(5000), d(0)),
        None: (d(7000), d(6000)),  # T4 1,000 + T5 6,000
    }
    guide, calculator = paths["guide"].pk, paths["calculator"].pk
    assert credits(data["assets"]) == {
        guide: (d(10000), d(16000)),  # T1 + T5
        calculator: (d(4000), d(0)),  # T2
        None: (d(2000), d(0)),  # T3
    }
    assert credits(data["assets"], "revenue")[None] == (d(2000), d(0))  # T3 + T4
    # Credited deals are the summed weights: OP1 0.4 + OP2 1 + OP3 1 for the guide.
    guide_row = next(row for row in data["assets"] if row.key == guide)
    assert guide_row.deals[U] == pytest.approx(2.4) and guide_row.deals[FIRST] == pytest.approx(3)
    # Every deal's amount is credited once per model; OP4 had no touch.
    for kind, total in (("pipeline", 17000), ("revenue", 17000)):
        for model in MODELS:
            assert sum(getattr(r, kind)[model] for r in data["channels"]) == total - 1000
    assert data["totals"]["pipeline"]["unattributed"] == Decimal(1000)
    assert data["totals"]["pipeline"]["unattributed_deals"] == 1


def test_roi_is_credited_revenue_less_spend_over_spend(paths):
    data = selectors.attribution(MARCH, models=MODELS)
    channels = {row.key: row for row in data["channels"]}
    # Webinar: (4,000 − 1,000) ÷ 1,000 under U-shaped, (10,000 − 1,000) ÷ 1,000 first touch.
    assert channels[Channel.WEBINAR].spend == Decimal(1000)
    assert channels[Channel.WEBINAR].roi(U) == pytest.approx(3.0)
    assert channels[Channel.WEBINAR].roi(FIRST) == pytest.approx(9.0)
    # Email: (5,000 − 500) ÷ 500; nothing under first touch: (0 − 500) ÷ 500.
    assert channels[Channel.EMAIL].roi(U) == pytest.approx(9.0)
    assert channels[Channel.EMAIL].roi(FIRST) == pytest.approx(-1.0)
    assert channels[Channel.PAID_SEARCH].roi(U) is None  # no spend
    campaigns = {row.key: row for row in data["campaigns"]}
    assert campaigns[paths["nurture"].pk].spend == Decimal(500)
    assert campaigns[paths["nurture"].pk].roi(U) == pytest.approx(9.0)
    assert campaigns[paths["webinar"].pk].roi(FIRST) == pytest.approx(9.0)


# The weights of each model as DESIGN.md defines them.
DEFINED_WEIGHTS = {
    Model.FIRST_TOUCH: {"positions": {"first_touch": 1.0}, "rest": 0.0},
    Model.LAST_TOUCH: {"positions": {"close": 1.0}, "rest": 0.0},
    Model.LINEAR: {"positions": {}, "rest": 1.0},
    Model.U_SHAPED: {"positions": {"first_touch": 0.4, "lead_creation": 0.4}, "rest": 0.2},
    Model.W_SHAPED: {
        "positions": {"first_touch": 0.3, "lead_creation": 0.3, "opportunity_creation": 0.3},
        "rest": 0.1,
    },
    Model.FULL_PATH: {
        "positions": {
            "first_touch": 0.225,
            "lead_creation": 0.225,
            "opportunity_creation": 0.225,
            "close": 0.225,
        },
        "rest": 0.1,
    },
    Model.TIME_DECAY: {"half_life_days": 7},
}


def test_the_stored_schemes_are_the_models_definitions(paths):
    assert SCHEMES == DEFINED_WEIGHTS
    data = selectors.attribution(MARCH, models=MODELS)
    for model in data["models"]:
        assert model["scheme"] is not None, model["key"]
        assert model["scheme"].weights == DEFINED_WEIGHTS[model["key"]]
        assert model["weights"] == DEFINED_WEIGHTS[model["key"]]
    # Every credit row points at its model's scheme; OP1's U-shaped pipeline
    # credit is 40 / 40 / 20 on T1, T2, T3.
    for scheme in AttributionScheme.objects.filter(
        pk__in=AttributionCredit.objects.values("scheme")
    ):
        assert scheme.weights == DEFINED_WEIGHTS[scheme.model]
    op1 = AttributionCredit.objects.filter(
        opportunity__name="OP1", kind="pipeline", model=U
    ).order_by("day", "weight")
    assert sorted(round(c.weight, 6) for c in op1) == [0.2, 0.4, 0.4]


def test_the_attribution_page_answers_the_seed_questions(paths, client_for, marketer):
    params = {"period": "custom", "start": "2026-03-01", "end": "2026-03-31",
              "model_a": U, "model_b": FIRST}  # fmt: skip
    body = client_for(marketer).get(reverse("reporting:attribution"), params).content.decode()
    # Which content assets generate pipeline (under the first model, U-shaped).
    assert element_text(body, "answer-assets").startswith(
        "Buyer guide ($10,000), ROI calculator ($4,000)"
    )
    # Which channels bring the highest-LTV customers: P's 10,000 (webinar);
    # Q's 6,000 and R's 1,000 average 3,500 (paid search).
    assert element_text(body, "answer-ltv") == (
        "Webinar ($10,000 from 1 customer), Paid search ($3,500 from 2 customers)"
    )
    ltv = table_rows(body, "LTV by acquisition channel")
    assert [row[:3] for row in ltv] == [["Webinar", "1", "$10,000"], ["Paid search", "2", "$3,500"]]
    channels = {row[0]: row[1:] for row in table_rows(body, "Credit by channel")}
    # U-shaped pipeline, revenue, deals; first touch the same; spend; the two ROIs.
    assert channels["Webinar"] == [
        "$4,000", "$4,000", "0.4", "$10,000", "$10,000", "1.0", "$1,000", "3.0×", "9.0×"]  # fmt: skip
    assert channels["Email"][-3:] == ["$500", "9.0×", "-1.0×"]
    export = client_for(marketer).get(
        reverse("reporting:export", args=["attribution"]), {**params, "table": "channels"}
    )
    lines = export.content.decode().splitlines()
    assert "Webinar,,4000.00,4000.00,0.4,10000.00,10000.00,1.0,1000.00,3.0,9.0" in lines
