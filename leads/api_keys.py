"""API keys for the ingestion API: created once, stored hashed, revocable."""

import secrets

from django.utils import timezone

from leads.models import ApiKey

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
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> None:
    """Idempotent: a revoked key keeps its first revocation time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    return ApiKey.objects.filter(key_hash=ApiKey.hash_key(raw_key), revoked_at__isnull=True).first()
