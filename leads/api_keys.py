"""API keys for the ingestion API: created once, stored hashed, revocable."""

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from config.audit import audit_record
from leads.models import ApiKey, ApiKeyUsage

KEY_PREFIX = "acc_"


def api_key_create(*, name: str, created_by=None, rate_limit_per_minute: int = 1200):
    """Create a key. Returns (api_key, raw_key); the raw key is never stored,
    so this is the only moment it can be shown."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name,
        prefix=raw_key[: len(KEY_PREFIX) + 8],
        key_hash=ApiKey.hash_key(raw_key),
        created_by=created_by,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    audit_record(actor=created_by, action="api_key.create", obj=api_key)
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey, actor=None) -> None:
    """Idempotent: a revoked key keeps its first revocation time."""
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        audit_record(actor=actor, action="api_key.revoke", obj=api_key)


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    return ApiKey.objects.filter(key_hash=ApiKey.hash_key(raw_key), revoked_at__isnull=True).first()


# --- Use of a key: last used, and the per-minute rate limit -------------------

LAST_USED_RESOLUTION = timedelta(minutes=1)
USAGE_KEPT_FOR = timedelta(hours=1)

_USAGE_COUNT = f"""
INSERT INTO {ApiKeyUsage._meta.db_table} (api_key_id, window_start, requests)
VALUES (%s, %s, 1)
ON CONFLICT (api_key_id, window_start)
DO UPDATE SET requests = {ApiKeyUsage._meta.db_table}.requests + 1
RETURNING requests
"""


@dataclass(frozen=True)
class RateWindow:
    """The requests a key made in the current one-minute window, this one included."""

    requests: int
    limit: int
    resets_at: datetime

    @property
    def exceeded(self) -> bool:
        return self.requests > self.limit

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the next window opens (at least 1)."""
        return max(1, math.ceil((self.resets_at - now).total_seconds()))


def api_key_record_use(*, api_key: ApiKey, now: datetime) -> RateWindow:
    """Count one request against the key's per-minute limit and note when it
    was last used.

    The counter is one atomic INSERT ... ON CONFLICT DO UPDATE in the database,
    so it holds across processes and servers; it runs in autocommit (call it
    outside any transaction) so that it never waits on a long write.
    `last_used_at` is written at most once a minute per key. The first request
    of a window deletes the key's windows older than an hour.
    """
    window_start = now.replace(second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(_USAGE_COUNT, [api_key.pk, window_start])
        requests = cursor.fetchone()[0]
    if requests == 1:
        ApiKeyUsage.objects.filter(
            api_key=api_key, window_start__lt=window_start - USAGE_KEPT_FOR
        ).delete()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return RateWindow(
        requests=requests,
        limit=api_key.rate_limit_per_minute,
        resets_at=window_start + timedelta(minutes=1),
    )
