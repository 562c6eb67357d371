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


class AuditEntry(models.Model):
    """Who changed what, when: leads, deals, SLA/ICP versions, routing rules,
    users and API keys. Written by services (and the admin) in the same
    transaction as the change; read by RevOps admins."""

    actor = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=50)
    object_type = models.CharField(max_length=100, help_text="app_label.model")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_time_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]

    def __str__(self):
        return f"{self.actor or 'system'} {self.action} {self.object_repr}"


class SweepState(models.Model):
    """How far a sweep has looked (e.g. touchpoints created up to this time
    have been checked for scoring)."""

    name = models.CharField(max_length=50, unique=True)
    upto = models.DateTimeField()

    def __str__(self):
        return f"{self.name} up to {self.upto:%Y-%m-%d %H:%M:%S}"
