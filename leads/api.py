"""The ingestion API's views: JSON over HTTP at /api/v1/ (DESIGN.md, "Ingestion
API"; the contract is `leads.api_schema`).

Callers authenticate with a bearer API key, not a session, so the views are
exempt from CSRF and from the login requirement. Every answer is JSON, errors
included. Order of checks: method (405), key (401), rate limit (429), body
size (413), then the body itself (400). Views parse, call one service and
answer; the services are in `leads.ingestion`.
"""

import json
import re
from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from leads import api_payloads, ingestion
from leads.api_keys import api_key_authenticate, api_key_record_use
from leads.api_representation import lead_for_api, lead_representation
from leads.api_schema import openapi_document

MAX_LEAD_ID = 2**63 - 1  # bigint


class ApiError(Exception):
    """An answer other than success, raised from deep in a view."""

    def __init__(self, response: JsonResponse):
        super().__init__(response.status_code)
        self.response = response


def _error(status: int, message: str, headers: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, headers=headers)


def _field_errors(errors: dict[str, list[str]]) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=400)


def _bearer_key(request) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def api_endpoint(*methods: str, authenticated: bool = True):
    """Make a view an API endpoint: JSON 405 for other methods; with
    `authenticated`, the bearer key (401) and its rate limit (429), the key
    then being `request.api_key`; `ApiError`s become their responses."""
    allow = ", ".join(methods)

    def decorator(view):
        @csrf_exempt
        @login_not_required
        @wraps(view)
        def endpoint(request, *args, **kwargs):
            if request.method not in methods:
                return _error(
                    405, f"{request.method} is not allowed here; use {allow}.", {"Allow": allow}
                )
            if authenticated:
                raw_key = _bearer_key(request)
                api_key = api_key_authenticate(raw_key) if raw_key else None
                if api_key is None:
                    return _error(
                        401,
                        "Send a valid API key: Authorization: Bearer <key>."
                        if not raw_key
                        else "This API key is not valid, or has been revoked.",
                        {
                            "WWW-Authenticate": 'Bearer realm="accord"'
                            if not raw_key
                            else 'Bearer realm="accord", error="invalid_token"'
                        },
                    )
                now = timezone.now()
                window = api_key_record_use(api_key=api_key, now=now)
                if window.exceeded:
                    retry_after = window.retry_after(now)
                    return _error(
                        429,
                        f"Rate limit of {window.limit} requests a minute reached for this key; "
                        f"retry in {retry_after} s.",
                        {"Retry-After": str(retry_after)},
                    )
                request.api_key = api_key
            try:
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response

        return endpoint

    return decorator


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


# Escapes that decode to text PostgreSQL cannot store: NUL, and (possibly lone) surrogates.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")


def _storable(value):
    """`value` with NUL characters removed from its strings (keys included).
    Raises ApiError for a lone surrogate, which has no UTF-8 form."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ApiError(
                _field_errors({"body": ["Contains an unpaired Unicode surrogate escape."]})
            ) from None
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _json_body(request):
    """The request's JSON body, decoded; ApiError 413 when over the limit, 400
    when it is not JSON."""
    limit = api_payloads.MAX_BODY_BYTES
    too_large = ApiError(
        _error(413, f"The request body is over {limit // (1024 * 1024)} MB; send smaller batches.")
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    if not body.strip():
        raise ApiError(_field_errors({"body": ["The request body is empty; send JSON."]}))
    try:
        data = json.loads(body, parse_constant=_reject_constant)
        if _SUSPECT_ESCAPE.search(body):
            data = _storable(data)
    except RecursionError:
        raise ApiError(_field_errors({"body": ["The JSON is nested too deeply."]})) from None
    except ValueError as error:
        raise ApiError(_field_errors({"body": [f"Not valid JSON: {error}"]})) from None
    return data


@api_endpoint("POST")
def leads_post(request):
    """Create (201) or update (200) a lead by email; answers with the lead."""
    payload, errors = api_payloads.lead_payload_clean(_json_body(request))
    if errors:
        return _field_errors(errors)
    try:
        upsert = ingestion.lead_ingest(payload=payload)
    except ingestion.IngestError as error:
        return _field_errors(error.errors)
    lead = lead_for_api(upsert.lead.pk)
    return JsonResponse(
        lead_representation(lead, now=timezone.now()), status=201 if upsert.created else 200
    )


@api_endpoint("POST")
def events_post(request):
    """Record a batch of touchpoints; answers with accepted/duplicates/rejected."""
    items, errors = api_payloads.event_batch_clean(_json_body(request))
    if errors:
        return _field_errors(errors)
    result = ingestion.events_ingest(api_key=request.api_key, items=items)
    return JsonResponse(result.as_json())


@api_endpoint("GET")
def lead_detail(request, lead_id: str):
    """A lead by id. Any id that is not a positive whole number is not found."""
    lead = None
    if lead_id.isascii() and lead_id.isdigit() and int(lead_id) <= MAX_LEAD_ID:
        lead = lead_for_api(int(lead_id))
    if lead is None:
        return _error(404, "No lead has this id.")
    return JsonResponse(lead_representation(lead, now=timezone.now()))


@api_endpoint("GET", authenticated=False)
def openapi(request):
    """The OpenAPI document; public, so that tools can read it before they have a key."""
    return JsonResponse(openapi_document())


@csrf_exempt
@login_not_required
def not_found(request, path: str = ""):
    """Any other URL under /api/v1/: a JSON 404 rather than an HTML page or a
    redirect to the login form."""
    return _error(404, "There is no such API endpoint; see /api/v1/openapi.json.")
