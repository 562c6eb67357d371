"""Small request/response helpers shared by every app's views."""

from django.utils.http import url_has_allowed_host_and_scheme


def is_fragment(request) -> bool:
    """Does this request want a fragment of the page rather than the page?

    True for htmx requests, except boosted ones and history restores (after
    a cache miss on the back button), which want the whole page.
    """
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def safe_next_url(request, url: str, fallback: str) -> str:
    """`url` if it stays on this site, else `fallback`."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return fallback
