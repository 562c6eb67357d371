"""Nothing a user saved depends on a message that may be lost: a broker that
refuses a task does not fail the request, and sweeps send the work again."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from config.models import SweepState
from leads.api_keys import api_key_create
from leads.models import Lead
from sla.models import Notification
from sla.scoring import unscored_touchpoints_sweep
from tests.factories import make_lead, make_touchpoint
from tests.sla_factories import make_icp, make_sla

pytestmark = pytest.mark.django_db


class BrokerDown:
    """Every task send fails, as when Redis is unreachable."""

    def __init__(self, monkeypatch):
        from celery.app.task import Task

        self.attempts = []

        def refuse(task, args=None, kwargs=None, **options):
            self.attempts.append(task.name)
            raise ConnectionError("broker unreachable")

        monkeypatch.setattr(Task, "apply_async", refuse)


class BrokerUp:
    """Task sends are recorded instead of published (the sweep is what is tested)."""

    def __init__(self, monkeypatch):
        from celery.app.task import Task

        self.sent = []

        def record(task, args=None, kwargs=None, **options):
            self.sent.append((task.name, args))

        monkeypatch.setattr(Task, "apply_async", record)


def test_events_are_accepted_while_the_broker_is_down_and_scored_by_the_sweep(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    make_sla(), make_icp()
    _, key = api_key_create(name="Forms")
    down = BrokerDown(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/events",
            json.dumps(
                {
                    "events": [
                        {
                            "id": "x1",
                            "email": "a@b.example",
                            "type": "page_view",
                            "occurred_at": timezone.now().isoformat(),
                        }
                    ]
                }
            ),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert down.attempts == ["sla.tasks.leads_rescore"]  # tried, refused, request fine
    lead = Lead.objects.get(email="a@b.example")
    assert lead.scored_at is None

    SweepState.objects.all().delete()
    up = BrokerUp(monkeypatch)
    assert unscored_touchpoints_sweep(now=timezone.now() + timedelta(minutes=2)) == 1
    assert up.sent == [("sla.tasks.leads_rescore", ([lead.pk],))]


def test_the_scoring_sweep_skips_leads_scored_since_and_advances_only_when_sent(
    monkeypatch,
):
    from sla.scoring import leads_score

    make_sla(), make_icp()
    scored, unscored = make_lead(), make_lead()
    make_touchpoint(scored), make_touchpoint(unscored)
    leads_score([scored.pk], qualify=False)
    later = timezone.now() + timedelta(minutes=2)
    BrokerDown(monkeypatch)
    assert unscored_touchpoints_sweep(now=later) == 1
    watermark = SweepState.objects.get(name="scoring").upto
    up = BrokerUp(monkeypatch)
    SweepState.objects.filter(name="scoring").update(upto=watermark - timedelta(minutes=10))
    assert unscored_touchpoints_sweep(now=later) == 1
    assert up.sent == [("sla.tasks.leads_rescore", ([unscored.pk],))]
    assert SweepState.objects.get(name="scoring").upto == later - timedelta(minutes=1)


def test_notification_emails_lost_with_the_broker_are_sent_by_the_sweep(rep, monkeypatch):
    from sla.services import notification_send
    from sla.tasks import notification_emails_sweep_run

    notification = notification_send(recipient=rep, title="Lead routed")
    assert notification.email_wanted and notification.emailed_at is None
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    up = BrokerUp(monkeypatch)
    notification_emails_sweep_run.run()
    assert up.sent == [("sla.tasks.notification_emails", ([notification.pk],))]


def test_a_notification_is_emailed_once(rep, mailoutbox):
    from sla.services import notification_send
    from sla.tasks import notification_email

    notification = notification_send(recipient=rep, title="Hello")
    notification_email.run(notification.pk)
    notification_email.run(notification.pk)  # a redelivered task
    assert len(mailoutbox) == 1


def test_a_page_that_sends_a_task_still_works_when_the_broker_is_down(
    client_for, revops, monkeypatch, django_capture_on_commit_callbacks
):
    from sla import versions

    make_sla(), make_icp()
    draft = versions.sla_draft_create(actor=revops)
    BrokerDown(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        versions.version_publish(version=draft, actor=revops, changelog="Works offline too.")
    draft.refresh_from_db()
    assert draft.status == "published"
    # The re-score job exists and its stalled lanes are resumed by the beat sweep.
    from sla.models import RescoreLane

    assert RescoreLane.objects.filter(job__sla_version=draft).count() == 2


@pytest.mark.django_db(transaction=True)
def test_pages_and_api_answer_503_while_the_database_is_away(rep):
    from django.db import connection
    from django.test import Client

    client = Client(raise_request_exception=False)  # as a browser would see it
    client.force_login(rep)
    original = dict(connection.settings_dict)
    connection.close()
    if (connection.settings_dict.get("HOST") or "").startswith("/"):
        connection.settings_dict["HOST"] = "/nonexistent-socket-dir"
    else:
        connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        page = client.get(reverse("leads:lead_list"))
        api = client.get("/api/v1/leads/1", HTTP_AUTHORIZATION="Bearer acc_x")
    finally:
        connection.close()
        connection.settings_dict.update(original)
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "back in a moment" in page.content.decode()
    assert api.status_code == 503 and "retry" in api.json()["error"]
    assert client.get(reverse("leads:lead_list")).status_code == 200  # resumes by itself
