"""Nothing a user saved depends on a message that may be lost: a broker that
refuses a task does not fail the request, and sweeps send the work again.
The database going away gets a clear 503, and everything resumes by itself."""

import json
import logging
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from config.models import SweepState
from leads.api_keys import api_key_create
from leads.models import Lead, Touchpoint
from sla.models import Notification
from sla.scoring import unscored_touchpoints_sweep
from tests.factories import make_lead, make_touchpoint
from tests.processes import celery_process, wait_for
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


@contextmanager
def database_away():
    """Requests in this block find the database unreachable, as during a
    restart or a network blip; afterwards the next request reconnects."""
    from django.db import connection

    original = dict(connection.settings_dict)
    connection.close()
    if (connection.settings_dict.get("HOST") or "").startswith("/"):
        connection.settings_dict["HOST"] = "/nonexistent-socket-dir"
    else:
        connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(original)


@pytest.mark.django_db(transaction=True)
def test_pages_and_api_answer_503_while_the_database_is_away(rep, monkeypatch):
    from django.test import Client

    make_sla(), make_icp()
    up = BrokerUp(monkeypatch)
    _, key = api_key_create(name="Forms")
    lead = make_lead(owner=rep, stage="mql")
    client = Client(raise_request_exception=False)  # as a browser would see it
    client.force_login(rep)
    with database_away():
        page = client.get(reverse("leads:lead_list"))
        fragment = client.get(
            reverse("leads:lead_list"), {"q": "x"}, headers={"HX-Request": "true"}
        )
        action = client.post(reverse("leads:lead_accept", args=[lead.pk]))
        api = client.get(f"/api/v1/leads/{lead.pk}", HTTP_AUTHORIZATION=f"Bearer {key}")
        events = client.post(
            "/api/v1/events",
            page_views("dee@blip.example"),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    for response in (page, fragment, action):
        assert response.status_code == 503 and response["Retry-After"] == "5"
        assert response["Content-Type"].startswith("text/html")
        body = response.content.decode()
        assert (
            "Accord is back in a moment" in body and "Nothing you were doing was half-saved" in body
        )
    for response in (api, events):
        assert response.status_code == 503 and response["Retry-After"] == "5"
        assert response["Content-Type"] == "application/json"
        assert response.json() == {
            "error": "The service is briefly unavailable; retry after a few seconds."
        }
    # It resumes by itself; what was refused with a 503 was not half-done,
    # and the client's retry is accepted.
    assert client.get(reverse("leads:lead_list")).status_code == 200
    lead.refresh_from_db()
    assert lead.stage == "mql" and not Lead.objects.filter(email="dee@blip.example").exists()
    retried = client.post(
        "/api/v1/events",
        page_views("dee@blip.example"),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert retried.status_code == 200 and retried.json()["accepted"] == 1
    retried_lead = Lead.objects.get(email="dee@blip.example")
    assert up.sent == [("sla.tasks.leads_rescore", ([retried_lead.pk],))]


# --- A real broker outage ----------------------------------------------------------------

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


@contextmanager
def celery_broker_at(url):
    """Point this process's Celery app at another broker until the block ends.
    Celery reads CELERY_BROKER_URL from the environment before its settings;
    its connection and producer pools hold connections to the old broker, so
    they start empty here and are put back afterwards."""
    from config.celery import app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", url)
        patch.setattr(app, "_pool", None)
        patch.setattr(app.amqp, "_producer_pool", None)
        yield


@contextmanager
def tasks_sent_to(queue):
    """Every task this process sends goes to `queue` (a test's own worker's),
    through the real publish path."""
    from celery.app.task import Task

    send = Task.apply_async

    def to_queue(task, args=None, kwargs=None, **options):
        return send(task, args, kwargs, **{**options, "queue": queue})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Task, "apply_async", to_queue)
        yield


class StalledBroker:
    """A broker that accepts connections and never answers (a hung Redis, a
    failover, a dead NAT entry). It holds each connection for GIVES_UP_AFTER
    seconds, then drops it, and records who hung up first: "client" when the
    app gave up waiting, "broker" when the broker dropped a client that would
    otherwise have waited forever."""

    GIVES_UP_AFTER = 30

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.server.getsockname()[1]}/0"
        self.hung_up_first = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:  # closed
                return
            self.connections += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn):
        conn.settimeout(self.GIVES_UP_AFTER)
        with conn:
            try:
                while conn.recv(4096):
                    pass  # commands are read and never answered
                self.hung_up_first.append("client")
            except TimeoutError:
                self.hung_up_first.append("broker")

    def close(self):
        self.server.close()


def page_views(*emails) -> str:
    return json.dumps(
        {
            "events": [
                {
                    "id": f"outage-{i}",
                    "email": email,
                    "type": "page_view",
                    "occurred_at": timezone.now().isoformat(),
                }
                for i, email in enumerate(emails)
            ]
        }
    )


def worker_args(queue):
    return ("worker", "--pool=solo", f"--queues={queue}", "--without-mingle",
            "--without-gossip", f"--hostname={queue}-{uuid.uuid4().hex[:4]}@%h")  # fmt: skip


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_events_posted_while_the_broker_is_down_are_kept_and_scored_once_it_is_back(client, caplog):
    make_sla(), make_icp()
    _, key = api_key_create(name="Forms")
    emails = ("ana@outage.example", "ana@outage.example", "bo@outage.example")
    with celery_broker_at(CLOSED_PORT_BROKER), caplog.at_level(logging.WARNING, "config.queue"):
        response = client.post(
            "/api/v1/events",
            page_views(*emails),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    assert response.status_code == 200 and response.json()["accepted"] == 3
    # The re-score task was really sent to the dead broker, and refused.
    refused = [r.getMessage() for r in caplog.records if r.name == "config.queue"]
    assert len(refused) == 1 and refused[0].startswith("Could not enqueue sla.tasks.leads_rescore")
    assert Touchpoint.objects.count() == 3
    assert list(Lead.objects.values_list("scored_at", flat=True)) == [None, None]

    # The outage lasted a few minutes: the sweep leaves the last minute to
    # tasks still on their way, so the touchpoints are older than that.
    Touchpoint.objects.update(created_at=F("created_at") - timedelta(minutes=3))
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    with celery_process(*worker_args(queue)) as worker, tasks_sent_to(queue):
        from sla.tasks import scoring_sweep_run

        scoring_sweep_run.run()  # what beat's sweep does, once the broker is back
        wait_for(
            lambda: not Lead.objects.filter(scored_at=None).exists(), process=worker, timeout=60
        )
    scores = dict(Lead.objects.values_list("email", "score"))
    assert scores == {"ana@outage.example": 4, "bo@outage.example": 2}  # 2 points a page view
    assert SweepState.objects.get(name="scoring").upto is not None


def test_a_broker_that_stops_answering_does_not_hold_the_request(
    client, django_capture_on_commit_callbacks
):
    make_sla(), make_icp()
    _, key = api_key_create(name="Forms")
    broker = StalledBroker()
    try:
        with celery_broker_at(broker.url), django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/events",
                page_views("cy@stall.example"),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
            )
        assert response.status_code == 200 and response.json()["accepted"] == 1
        assert broker.connections >= 1
        # The app gave up on the silent broker (its socket timeout), long
        # before the broker would have let go of the connection.
        wait_for(lambda: len(broker.hung_up_first) == broker.connections)
        assert set(broker.hung_up_first) == {"client"}
    finally:
        broker.close()
    assert Lead.objects.get(email="cy@stall.example").touchpoints.count() == 1
