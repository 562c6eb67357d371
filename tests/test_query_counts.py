"""Pages whose query count must not grow with the rows they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.audit import audit_record
from leads import services
from leads.models import LeadStage, Objection
from sla.models import Notification
from tests.factories import (
    make_account,
    make_asset,
    make_campaign,
    make_competitor,
    make_lead,
    make_opportunity,
    make_touchpoint,
    reason,
)

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


@pytest.mark.parametrize("group_by", ["reason", "campaign", "channel", "competitor"])
def test_feedback_view_queries_do_not_grow(client_for, marketer, rep, group_by):
    client = client_for(marketer)
    objections = list(Objection.objects.all()[:3])

    def feedback(n):
        for i in range(n):
            lead = make_lead(stage=LeadStage.MQL, owner=rep, source_campaign=make_campaign())
            competitor = make_competitor(f"Rival {i}")
            services.lead_feedback_add(
                lead=lead, actor=rep, note="Heard", competitor=competitor, objections=objections
            )
            services.lead_reject(
                lead=lead, actor=rep, reason=reason("no-budget"), competitor=competitor,
                objections=objections[:i % 3],
            )  # fmt: skip

    feedback(2)
    url = f"{reverse('leads:feedback_report')}?group_by={group_by}&start=2000-01-01"
    few = queries(client, url)
    feedback(25)
    assert queries(client, url) == few


def test_account_page_queries_do_not_grow(client_for, marketer, rep):
    client = client_for(marketer)
    account = make_account()

    def add(n):
        for _ in range(n):
            lead = make_lead(account=account, owner=rep, source_campaign=make_campaign())
            make_touchpoint(lead, campaign=make_campaign(), asset=make_asset())
            services.activity_log(actor=rep, lead=lead, kind="call", subject="Hello")
            make_opportunity(account=account, owner=rep, stage="proposal")
            make_opportunity(account=account, stage="lost", loss_reason=reason("price"))

    add(2)
    few = queries(client, account.get_absolute_url())
    add(30)  # more than a page of each section
    assert queries(client, account.get_absolute_url()) == few
    section = f"{account.get_absolute_url()}?section=closed"
    assert queries(client, section) == few  # a paged section costs what the first page does


def test_opportunity_page_queries_do_not_grow(client_for, marketer, rep):
    client = client_for(marketer)
    lead = make_lead(stage=LeadStage.SQL, owner=rep, account=make_account())
    opportunity = services.lead_convert(lead=lead, actor=rep)

    def add(n):
        for _ in range(n):
            make_touchpoint(lead, campaign=make_campaign(), asset=make_asset())
            services.activity_log(
                actor=rep, lead=lead, opportunity=opportunity, kind="call", subject="Call"
            )
            services.lead_feedback_add(
                lead=lead, actor=rep, note="Heard", competitor=make_competitor()
            )
            services.opportunity_move(
                opportunity=opportunity, actor=rep,
                to_stage="demo" if opportunity.stage != "demo" else "proposal",
            )  # fmt: skip

    add(2)
    few = queries(client, opportunity.get_absolute_url())
    add(30)
    assert queries(client, opportunity.get_absolute_url()) == few
