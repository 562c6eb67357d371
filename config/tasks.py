from celery import shared_task
from django.utils import timezone

from config.models import ServiceHeartbeat


@shared_task(acks_late=True, ignore_result=True)
def beat_heartbeat():
    """Record that beat fired and a worker ran it. Idempotent (an upsert)."""
    ServiceHeartbeat.objects.update_or_create(name="beat", defaults={"seen_at": timezone.now()})
