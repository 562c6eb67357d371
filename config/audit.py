"""The audit log: one call per change, in the changing transaction."""

import json

from django.core.serializers.json import DjangoJSONEncoder

from config.models import AuditEntry


def _jsonable(changes: dict) -> dict:
    return json.loads(json.dumps(changes, cls=DjangoJSONEncoder, default=str))


def audit_record(*, actor, action: str, obj, changes: dict | None = None) -> AuditEntry:
    """Record that `actor` (None: the system) did `action` to `obj`, with the
    fields it changed ({field: [before, after]} or any JSON-able detail)."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes=_jsonable(changes or {}),
    )


def audit_bulk(*, actor, action: str, model, rows) -> None:
    """Many entries at once: `rows` are (object id, repr, changes)."""
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=model._meta.label_lower,
            object_id=str(pk),
            object_repr=str(text)[:200],
            changes=_jsonable(changes or {}),
        )
        for pk, text, changes in rows
    )


class AuditedAdmin:
    """A ModelAdmin mixin: every add, change and delete in the admin is also
    written to the audit log, with the changed fields."""

    def log_addition(self, request, obj, message):
        audit_record(actor=request.user, action="admin.add", obj=obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        audit_record(actor=request.user, action="admin.change", obj=obj, changes={"admin": message})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            audit_record(actor=request.user, action="admin.delete", obj=obj)
        return super().log_deletions(request, queryset)
