from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from sla.models import Notification


@shared_task(acks_late=True, ignore_result=True)
def notification_email(notification_id: int):
    """Email a notification to its recipient, once: one already emailed (or
    deleted) is skipped. A worker that dies between sending and recording may
    send it again (mail is at-least-once)."""
    notification = (
        Notification.objects.select_related("recipient")
        .filter(pk=notification_id, emailed_at__isnull=True)
        .first()
    )
    if notification is None or not notification.recipient.email:
        return
    send_mail(
        subject=f"[Accord] {notification.title}",
        message=f"{notification.body}\n\n{notification.url}".strip(),
        from_email=None,
        recipient_list=[notification.recipient.email],
    )
    Notification.objects.filter(pk=notification_id).update(emailed_at=timezone.now())


@shared_task(acks_late=True, ignore_result=True)
def notification_emails(notification_ids: list[int]):
    """Email several notifications (a batch from routing or a sweep)."""
    for notification_id in notification_ids:
        notification_email.run(notification_id)


@shared_task(acks_late=True, ignore_result=True)
def leads_rescore(lead_ids: list[int], sent_at: str | None = None):
    """Score these leads under the versions in force and qualify those that
    meet the SLA. Idempotent (scoring is recomputed; qualification checks the
    stage under a row lock).

    `sent_at` (ISO time) is when the touchpoints that asked for it had been
    committed: a lead scored since then (by a later task that came first, or
    a re-score job) already counts them and is skipped, so a backlog of tasks
    for the same busy leads scores each once (sla.scoring.leads_scored_since)."""
    from django.utils.dateparse import parse_datetime

    from sla.scoring import CHUNK_SIZE, leads_score, leads_scored_since

    lead_ids = set(lead_ids)
    if sent_at:
        lead_ids -= leads_scored_since(lead_ids, parse_datetime(sent_at))
    lead_ids = sorted(lead_ids)
    for start in range(0, len(lead_ids), CHUNK_SIZE):
        leads_score(lead_ids[start : start + CHUNK_SIZE])


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=3600, time_limit=3700)
def rescore_lane_run(job_id: int, lane: int):
    """Re-score one lane of a publish's job, chunk by chunk. Resumable: a task
    redelivered after its worker died continues from the lane's resume point."""
    from sla.scoring import rescore_lane_step

    chunk_size = settings.SLA_RESCORE_CHUNK_SIZE
    while rescore_lane_step(job_id, lane, chunk_size=chunk_size):
        pass


@shared_task(acks_late=True, ignore_result=True)
def impact_preview_prepare_run(kind: str, version_id: int):
    """A draft ("sla" or "icp") was saved: compute and cache its impact
    preview, so the page finds it ready. Idempotent (figures cached for the
    draft as it stands are kept; a version no longer a draft is skipped)."""
    from sla.impact import impact_preview_prepare

    impact_preview_prepare(kind=kind, version_id=version_id)


@shared_task(acks_late=True, ignore_result=True)
def response_clock_sweep_run():
    """Beat fires this every minute: breach overdue clocks, escalate."""
    from sla.services import response_clock_sweep

    response_clock_sweep(now=timezone.now())


@shared_task(acks_late=True, ignore_result=True)
def rescore_jobs_resume_run():
    """Beat fires this every minute: pick up re-score lanes that stalled."""
    from sla.scoring import rescore_jobs_resume

    rescore_jobs_resume()


@shared_task(acks_late=True, ignore_result=True)
def notification_emails_sweep_run():
    """Beat: emails whose task never ran (the broker was down at commit)."""
    from datetime import timedelta

    from config.queue import enqueue

    now = timezone.now()
    due = list(
        Notification.objects.filter(
            email_wanted=True,
            emailed_at__isnull=True,
            created_at__lte=now - timedelta(minutes=2),
            created_at__gte=now - timedelta(days=1),
        ).values_list("pk", flat=True)[:1000]
    )
    if due:
        enqueue(notification_emails, due)


@shared_task(acks_late=True, ignore_result=True)
def scoring_sweep_run():
    """Beat: re-score leads with touchpoints newer than their score (their
    re-score task was lost, or never sent)."""
    from sla.scoring import unscored_touchpoints_sweep

    unscored_touchpoints_sweep()
