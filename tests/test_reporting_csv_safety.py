"""Every reporting CSV (each table of each page, and the rows behind every
figure) neutralises cells a spreadsheet would run as a formula: names that
start with = + - @, a tab or a carriage return come out quoted with a
leading apostrophe; numbers, negative ones included, stay numbers."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from config import roles
from leads.csv_safety import FORMULA_TRIGGERS
from leads.models import CampaignSpend, Channel, FeedbackReason, LeadStageChange, Opportunity
from reporting.models import DriverCategory, SharedGoal
from reporting.rollups import reporting_refresh
from sla.models import Breach
from tests.factories import (
    make_account,
    make_asset,
    make_campaign,
    make_lead,
    make_team,
    make_touchpoint,
    reason,
)
from tests.sla_factories import make_sla
from tests.winloss_factories import make_action_item, make_retrospective

PAYLOADS = {
    "campaign": '=HYPERLINK("http://evil.example","click")',
    "account": "+1",
    "opportunity": "-1",
    "asset": "@x",
    "lead": "=Lead",  # names are stripped: a person's name cannot lead with a tab
    "rep": "-Rep",
    "team": "\tTeam",
    "goal": "\rGoal",
    "action": "+Call everyone",
    "driver": "@Pricing",
    "reason": "=No budget",
}
PAGE_TABLES = {
    "dashboard": ["figures", "funnel", "cycle", "economics", "trend", "goals"],
    "attribution": ["channels", "campaigns", "assets", "ltv", "totals", "weights"],
    "scorecard": ["versions", "teams", "reps"],
    "goals": ["goals"],
    "qbr": ["kpis", "sla", "themes", "goals", "actions"],
}
ROW_FIGURES = [
    ("new_pipeline", {}),
    ("sourced_pipeline", {}),
    ("won_revenue", {}),
    ("win_rate", {}),
    ("sales_cycle", {}),
    ("sales_cycle", {"channel": Channel.EMAIL}),
    ("influenced_revenue", {}),
    ("mqls", {}),
    ("acceptance_rate", {}),
    ("first_contact", {}),
    ("conversion", {}),
    *[("funnel", {"stage": s}) for s in ("created", "mql", "sal", "sql", "opportunity")],
    ("new_customers", {}),
    *[("credited", {"model": "linear", "kind": kind}) for kind in ("pipeline", "revenue")],
]


@pytest.fixture
def hostile_names(make_user, manager, taxonomy):
    """One deal's whole story with a formula-like name everywhere a name
    reaches a reporting CSV. Everything happened in the last few days, the
    deal closed today (so the last 90 days and this quarter hold it)."""
    now = timezone.now()
    rep = make_user("hostile", roles.SALES_REP, first_name=PAYLOADS["rep"])
    make_team(PAYLOADS["team"], members=[rep])
    sla = make_sla(retro_amount_threshold=Decimal(100), retro_due_days=30)
    FeedbackReason.objects.filter(code="no-budget").update(label=PAYLOADS["reason"])
    campaign = make_campaign(name=PAYLOADS["campaign"], channel=Channel.EMAIL)
    CampaignSpend.objects.create(campaign=campaign, month=timezone.localdate().replace(day=1),
                                 amount=900)  # fmt: skip
    idle = make_campaign(name="Idle", channel=Channel.WEBINAR)
    CampaignSpend.objects.create(campaign=idle, month=timezone.localdate().replace(day=1),
                                 amount=100)  # fmt: skip
    asset = make_asset(title=PAYLOADS["asset"])
    lead = make_lead(first_name=PAYLOADS["lead"], source_channel=Channel.EMAIL, owner=rep,
                     created_at=now - timedelta(days=4), mql_at=now - timedelta(days=4),
                     response_due_at=now - timedelta(days=3, hours=20), sla_version=sla,
                     first_contact_at=now - timedelta(days=3))  # fmt: skip
    make_touchpoint(lead, occurred_at=now - timedelta(days=4, hours=1), campaign=campaign,
                    asset=asset)  # fmt: skip
    for stage, days in (("mql", 4), ("sal", 3), ("sql", 2), ("opportunity", 1)):
        LeadStageChange.objects.create(lead=lead, to_stage=stage, actor=rep,
                                       changed_at=now - timedelta(days=days))  # fmt: skip
    Breach.objects.create(lead=lead, sla_version=sla, owner=rep, due_at=lead.response_due_at,
                          breached_at=lead.response_due_at)  # fmt: skip
    rejected = make_lead(first_name=PAYLOADS["lead"], owner=rep, sla_version=sla,
                         created_at=now - timedelta(days=4))  # fmt: skip
    LeadStageChange.objects.create(lead=rejected, from_stage="mql", to_stage="rejected", actor=rep,
                                   reason=reason("no-budget"), changed_at=now - timedelta(days=2))  # fmt: skip
    deal = Opportunity.objects.create(
        name=PAYLOADS["opportunity"], account=make_account(name=PAYLOADS["account"]),
        source_lead=lead, owner=rep, amount=Decimal(5000), created_at=now - timedelta(days=1),
        stage="won", closed_on=timezone.localdate(), source_channel=Channel.EMAIL,
        is_marketing_sourced=True,
    )  # fmt: skip
    LeadStageChange.objects.create(lead=lead, from_stage="opportunity", to_stage="customer",
                                   changed_at=now)  # fmt: skip
    DriverCategory.objects.create(code="hostile", name=PAYLOADS["driver"], position=99)
    retrospective = make_retrospective(opportunity=deal, drivers=[("hostile", "helped")])
    make_action_item(retrospective, owner=manager, title=PAYLOADS["action"])
    today = timezone.localdate()
    SharedGoal.objects.create(title=PAYLOADS["goal"], metric="won_revenue", target=1000,
                              starts_on=today - timedelta(days=30), ends_on=today)  # fmt: skip
    reporting_refresh()
    return deal


def csv_cells(response) -> list[str]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    if response.streaming:
        content = b"".join(response.streaming_content).decode()
    else:
        content = response.content.decode()
    return [cell for row in csv.reader(io.StringIO(content, newline="")) for cell in row]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_every_reporting_csv_neutralises_formulas(hostile_names, client_for, manager):
    client = client_for(manager)
    today = timezone.localdate()
    filters = {"period": "90d", "quarter": f"{today.year}-q{(today.month - 1) // 3 + 1}"}
    exports = {}
    for page, tables in PAGE_TABLES.items():
        for table in tables:
            url = reverse("reporting:export", args=[page])
            exports[f"{page}/{table}"] = csv_cells(client.get(url, {**filters, "table": table}))
    for figure, params in ROW_FIGURES:
        url = reverse("reporting:rows_export", args=[figure])
        exports[f"rows/{figure}{params}"] = csv_cells(client.get(url, {**filters, **params}))

    for name, cells in exports.items():
        for cell in cells:
            assert cell not in PAYLOADS.values(), (name, cell)
            if cell.startswith(FORMULA_TRIGGERS):
                assert is_number(cell), (name, cell)  # e.g. a negative change
    # The names did reach the CSVs, neutralised.
    everything = [cell for cells in exports.values() for cell in cells]
    for key, payload in PAYLOADS.items():
        assert any(cell.startswith("'" + payload) for cell in everything), key
    wanted = {
        "attribution/campaigns": "campaign",
        "attribution/assets": "asset",
        "rows/new_pipeline{}": "account",
        "scorecard/teams": "team",
        "scorecard/reps": "rep",
        "dashboard/goals": "goal",
        "qbr/actions": "action",
        "qbr/themes": "driver",
        "rows/acceptance_rate{}": "reason",
        "rows/mqls{}": "lead",
    }
    for name, key in wanted.items():
        assert any(cell.startswith("'" + PAYLOADS[key]) for cell in exports[name]), name
    # Negative numbers stay numbers: the idle campaign's ROI is (0 − 100) ÷ 100.
    assert "-1.0" in exports["attribution/campaigns"]
