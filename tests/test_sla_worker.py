"""The qualify -> route -> notify chain through a real worker and broker, and
a re-score job that survives its worker being killed."""

import json
import signal
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from leads.api_keys import api_key_create
from leads.models import Lead, LeadStage, LeadStageChange
from sla.models import RescoreJob, RoutingRule, ScoreEvaluation
from tests.factories import make_lead, make_team, make_touchpoint
from tests.processes import celery_process, wait_for
from tests.sla_factories import make_icp, make_sla

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clean_queue():
    """Tests here consume the default queue: drop tasks earlier test runs left
    there (enqueued by transactional tests with no worker running)."""
    from config.celery import app

    app.control.purge()


def test_an_api_event_qualifies_routes_and_notifies_through_a_worker(
    client, make_user, clean_queue
):
    make_sla(), make_icp()
    rep = make_user("ava", "Sales rep")
    team = make_team(manager=make_user("max", "Sales manager"), members=[rep])
    RoutingRule.objects.create(name="All", team=team)
    _, key = api_key_create(name="Forms")
    with celery_process(
        "worker", "--pool=solo", "--without-mingle", "--without-gossip",
        f"--hostname=chain-{uuid.uuid4().hex[:6]}@%h",
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
    ) as worker:  # fmt: skip
        posted = timezone.now()
        response = client.post(
            "/api/v1/events",
            json.dumps(
                {
                    "events": [
                        {
                            "id": "e1",
                            "email": "hot@buyer.example",
                            "type": "demo_request",
                            "occurred_at": posted.isoformat(),
                        }
                    ]
                }
            ),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        assert response.json().get("accepted") == 1, response.content
        lead = wait_for(
            lambda: Lead.objects.filter(email="hot@buyer.example", stage=LeadStage.MQL).first(),
            process=worker,
        )
        # The email goes in a second task, enqueued once routing committed.
        notification = wait_for(
            lambda: rep.notifications.filter(
                title__startswith="New high-intent MQL", emailed_at__isnull=False
            ).first(),
            process=worker,
        )
    # The worker mails to the console: the message is in its output.
    output = worker.stdout.read()
    assert lead.owner == rep
    assert lead.is_high_intent and lead.response_due_at is not None
    assert lead.sla_version is not None and lead.icp_version is not None
    assert rep.notifications.filter(title__startswith="New high-intent MQL").count() == 1
    assert notification.email_wanted
    assert f"Subject: [Accord] {notification.title}" in output
    assert f"To: {rep.email}" in output
    assert LeadStageChange.objects.filter(lead=lead, to_stage="mql").count() == 1


def test_a_rescore_job_finishes_exactly_once_after_its_worker_is_killed(clean_queue):
    make_sla(mql_threshold=10), make_icp()
    leads = [make_lead(industry="software", title="IT Director") for _ in range(300)]
    for lead in leads[:150]:
        make_touchpoint(lead, type="webinar_attended")
    from sla.scoring import rescore_job_create

    env = {"SLA_RESCORE_CHUNK_SIZE": "10"}
    worker_args = ("worker", "--pool=solo", "--without-mingle", "--without-gossip")
    with celery_process(*worker_args, **env) as first:
        job = rescore_job_create(lanes=2)
        wait_for(lambda: RescoreJob.objects.get(pk=job.pk).processed >= 40, process=first)
        first.send_signal(signal.SIGKILL)  # mid-job, messages unacknowledged
        first.wait()
    job.refresh_from_db()
    assert job.status == RescoreJob.Status.RUNNING and job.processed < 300
    from sla.scoring import rescore_jobs_resume

    with celery_process(*worker_args, **env) as second:
        # Beat's minute sweep finds the stalled lanes (here: at once) and
        # enqueues them again; Redis may also redeliver the killed tasks.
        assert rescore_jobs_resume(stale_after=timedelta(0)) >= 1
        wait_for(
            lambda: RescoreJob.objects.get(pk=job.pk).status == RescoreJob.Status.DONE,
            process=second,
            timeout=90,
        )
    job.refresh_from_db()
    assert job.processed == job.total == 300
    assert ScoreEvaluation.objects.filter(lead__in=leads).count() == 300
    mqls = LeadStageChange.objects.filter(lead__in=leads, to_stage="mql")
    assert mqls.count() == job.qualified == Lead.objects.filter(stage="mql").count()
    assert mqls.values("lead").distinct().count() == mqls.count()  # nobody qualified twice
