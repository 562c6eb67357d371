from datetime import timedelta

from django.db import models
from django.utils import timezone


class ServiceHeartbeat(models.Model):
    """When a background service last proved it was alive.

    `beat` is written by a task that the beat schedule fires every minute and a
    worker runs, so a fresh row means both beat and a worker are working.
    """

    STALE_AFTER = timedelta(minutes=3)

    name = models.CharField(max_length=50, unique=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} seen {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @property
    def is_stale(self) -> bool:
        return timezone.now() - self.seen_at > self.STALE_AFTER
