"""Reads of the configuration app's own tables."""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef

from config.models import AuditEntry


def audit_actors():
    """Everyone who has changed something (staff or not), for the audit log's
    "Who" filter: a semi-join on the entries' actor index per user, never a
    scan of the whole log."""
    return (
        get_user_model()
        .objects.filter(Exists(AuditEntry.objects.filter(actor=OuterRef("pk"))))
        .order_by("username")
    )
