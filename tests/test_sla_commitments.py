"""Marketing's commitments this month: MQL volume, pace, acceptance rate."""

from datetime import date, datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from leads.models import LeadStageChange
from reporting.rollups import reporting_refresh
from sla.selectors import marketing_commitments
from tests.factories import make_lead
from tests.sla_factories import make_sla


def change(lead, from_stage, to_stage, when):
    LeadStageChange.objects.create(
        lead=lead, from_stage=from_stage, to_stage=to_stage, changed_at=when
    )


def test_mql_volume_pace_and_acceptance_this_month(db):
    make_sla(mql_commitment_per_month=60, min_acceptance_rate=70)
    tz = timezone.get_current_timezone()
    today = date(2026, 11, 10)
    in_month = datetime(2026, 11, 5, 12, tzinfo=tz)
    last_month = datetime(2026, 10, 30, 12, tzinfo=tz)
    leads = [make_lead() for _ in range(6)]
    for lead in leads[:4]:
        change(lead, "new", "mql", in_month)
    change(leads[4], "new", "mql", last_month)  # not this month
    change(leads[0], "mql", "sal", in_month + timedelta(hours=1))
    change(leads[1], "mql", "sal", in_month + timedelta(hours=1))
    change(leads[2], "mql", "rejected", in_month + timedelta(hours=1))
    reporting_refresh()  # the counts are the dashboard's, from the stage-flow rollups
    result = marketing_commitments(today=today)
    assert result["mqls"] == 4
    assert result["pace"] == 12  # 4 in 10 days of a 30-day month
    assert not result["on_pace"]
    assert result["acceptance_rate"] == 67 and not result["acceptance_ok"]


def test_home_shows_the_agreement_this_month(client_for, marketer):
    make_sla(mql_commitment_per_month=60)
    body = client_for(marketer).get(reverse("home")).content.decode()
    assert "The agreement this month" in body and "/ 60" in body
