"""Pages whose query count must not grow with the rows they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.audit import audit_record
from leads import services
from leads.models import LeadStage
from sla.models import Notification
from tests.factories import make_campaign, make_competitor, make_lead, reason

pytestmark = pytest.mark.usefixtures("taxonomy")


def queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_audit_log_queries_do_not_grow(client_for, revops, rep):
    client = client_for(revops)
    for n in range(3):
        audit_record(actor=rep, action="lead.edit", obj=make_lead(), changes={"title": ["a", n]})
    few = queries(client, reverse("audit_log"))
    for n in range(60):
        audit_record(actor=rep, action="lead.edit", obj=make_lead(), changes={"title": ["a", n]})
    assert queries(client, reverse("audit_log")) == few


def test_notification_page_queries_do_not_grow(client_for, rep):
    client = client_for(rep)
    Notification.objects.bulk_create(Notification(recipient=rep, title=f"N{n}") for n in range(3))
    few = queries(client, reverse("notification_list"))
    Notification.objects.bulk_create(Notification(recipient=rep, title=f"N{n}") for n in range(60))
    assert queries(client, reverse("notification_list")) == few


def test_feedback_view_queries_do_not_grow(client_for, marketer, rep):
    client = client_for(marketer)

    def rejected(n):
        for _ in range(n):
            lead = make_lead(stage=LeadStage.MQL, owner=rep, source_campaign=make_campaign())
            services.lead_reject(
                lead=lead, actor=rep, reason=reason("no-budget"), competitor=make_competitor()
            )

    rejected(2)
    url = reverse("leads:feedback_report")
    few = queries(client, url + "?group_by=campaign")
    rejected(25)
    assert queries(client, url + "?group_by=campaign") == few
