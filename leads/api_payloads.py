"""What the ingestion API accepts: the checks on its JSON payloads.

Plain Python rather than Django forms, because the events endpoint checks up
to 1,000 items per request and has to stay cheap. Each `*_clean` function
takes decoded JSON and returns the cleaned value (or None) and its field
errors, `{"field": ["message", ...]}`. Nothing here touches the database; the
limits come from the models, so the API refuses what a column could not hold,
and `leads.api_schema` publishes the same limits.

Decisions the OpenAPI document repeats:
- Unknown fields are rejected (a misspelt field is an error, not silently
  dropped data).
- `null` means "not given", as does a blank string (blank values never erase
  what is known about a lead).
- Text is trimmed of surrounding whitespace before it is stored; lengths are
  checked on the value as sent.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from leads.models import Campaign, Channel, ContentAsset, Lead, Touchpoint, TouchpointType
from leads.services import LEAD_DATA_FIELDS

MAX_EVENTS_PER_BATCH = 1000
MAX_BODY_BYTES = 5 * 1024 * 1024


def _max_length(model, field: str) -> int:
    return model._meta.get_field(field).max_length


# The lead fields a form fill may set, with the column limits they must fit.
LEAD_TEXT_FIELDS = {
    name: _max_length(Lead, name)
    for name in LEAD_DATA_FIELDS
    if name not in ("region", "employees")  # no region in the API; employees is a number
}
# An email's domain becomes the lead's company domain; both hold 254 characters.
EMAIL_MAX_LENGTH = min(_max_length(Lead, "email"), _max_length(Lead, "company_domain"))
EMPLOYEES_MAX = 2_147_483_647  # PositiveIntegerField
CAMPAIGN_NAME_MAX_LENGTH = _max_length(Campaign, "name")
ASSET_TITLE_MAX_LENGTH = _max_length(ContentAsset, "title")
EVENT_ID_MAX_LENGTH = _max_length(Touchpoint, "external_id")
URL_MAX_LENGTH = _max_length(Touchpoint, "url")
CHANNELS = frozenset(Channel.values)
TOUCHPOINT_TYPES = frozenset(TouchpointType.values)
# Events must have happened in Accord's lifetime: after this year began, and
# no later than a day from now (clock skew, time-zone mistakes).
EARLIEST_EVENT_YEAR = 2000
FUTURE_EVENT_TOLERANCE = timedelta(days=1)

# An unquoted (dot-atom) local part and a host name with at least one dot.
# Written so that Python and ECMA-262 (JSON Schema) read it the same way.
EMAIL_LOCAL_PATTERN = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
EMAIL_DOMAIN_PATTERN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_RE = re.compile(f"{EMAIL_LOCAL_PATTERN}@{EMAIL_DOMAIN_PATTERN}")

LEAD_FIELDS = frozenset({"email", *LEAD_TEXT_FIELDS, "employees", "channel", "campaign"})
EVENT_FIELDS = frozenset(
    {"id", "email", "type", "occurred_at", "url", "channel", "campaign", "asset", "properties"}
)

REQUIRED = "This field is required."
NOT_A_STRING = "Must be a string."
INVALID_EMAIL = "Enter a valid email address."
UNKNOWN_FIELD = "Unknown field."
NOT_AN_OBJECT = "Must be a JSON object."


def _too_long(max_length: int, length: int) -> str:
    return f"Ensure this value has at most {max_length} characters (it has {length})."


def _not_a_choice(allowed) -> str:
    return f"Must be one of: {', '.join(sorted(allowed))}."


def email_problem(value) -> str | None:
    """Why `value` is not an email address the API takes, or None if it is."""
    if not isinstance(value, str):
        return NOT_A_STRING
    if len(value) > EMAIL_MAX_LENGTH:
        return _too_long(EMAIL_MAX_LENGTH, len(value))
    if _EMAIL_RE.fullmatch(value) is None:
        return INVALID_EMAIL
    return None


def _optional_text(payload: dict, name: str, max_length: int, errors: dict) -> str:
    """A trimmed optional string; '' when absent, null or blank."""
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = [NOT_A_STRING]
        return ""
    if len(value) > max_length:
        errors[name] = [_too_long(max_length, len(value))]
        return ""
    return value.strip()


def _optional_choice(payload: dict, name: str, allowed: frozenset, errors: dict) -> str:
    """One of `allowed`, or '' when absent or null."""
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or value not in allowed:
        errors[name] = [_not_a_choice(allowed)]
        return ""
    return value


def _unknown_fields(payload: dict, known: frozenset, errors: dict) -> None:
    for name in payload.keys() - known:
        errors[str(name)] = [UNKNOWN_FIELD]


@dataclass(frozen=True)
class LeadPayload:
    """A cleaned form fill: `data` holds only the lead fields given."""

    email: str
    data: dict
    channel: str
    campaign_name: str


def lead_payload_clean(payload) -> tuple[LeadPayload | None, dict[str, list[str]]]:
    """Check a `POST /leads` body. The campaign is returned by name; whether
    such a campaign exists is for the caller to check."""
    if not isinstance(payload, dict):
        return None, {"body": [NOT_AN_OBJECT]}
    errors: dict[str, list[str]] = {}
    _unknown_fields(payload, LEAD_FIELDS, errors)
    email = payload.get("email")
    if email is None:
        errors["email"] = [REQUIRED]
    elif problem := email_problem(email):
        errors["email"] = [problem]
    data = {}
    for name, max_length in LEAD_TEXT_FIELDS.items():
        if value := _optional_text(payload, name, max_length, errors):
            data[name] = value
    employees = payload.get("employees")
    if employees is not None:
        if isinstance(employees, float) and employees.is_integer():
            employees = int(employees)  # JSON has one number type: 250.0 is 250
        if not isinstance(employees, int) or isinstance(employees, bool):
            errors["employees"] = ["Must be a whole number."]
        elif not 0 <= employees <= EMPLOYEES_MAX:
            errors["employees"] = [f"Must be between 0 and {EMPLOYEES_MAX}."]
        else:
            data["employees"] = employees
    channel = _optional_choice(payload, "channel", CHANNELS, errors)
    campaign_name = _optional_text(payload, "campaign", CAMPAIGN_NAME_MAX_LENGTH, errors)
    if errors:
        return None, errors
    return LeadPayload(
        email=email.lower(), data=data, channel=channel, campaign_name=campaign_name
    ), {}


@dataclass(frozen=True, slots=True)
class EventPayload:
    """One cleaned event of a batch; `index` is its position in the batch."""

    index: int
    external_id: str
    email: str
    type: str
    occurred_at: datetime
    url: str
    channel: str
    campaign_name: str
    asset_title: str
    properties: dict


def occurred_at_parse(value, *, now: datetime) -> tuple[datetime | None, str | None]:
    """An ISO 8601 timestamp with a time zone, in UTC; or the reason it is not one."""
    if not isinstance(value, str):
        return None, NOT_A_STRING
    try:
        # RFC 3339 allows a lower-case "t" and "z"; fromisoformat does not.
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        return None, "Enter an ISO 8601 date and time, e.g. 2026-05-01T09:30:00Z."
    if moment.tzinfo is None:
        return None, "Include a time zone, e.g. 2026-05-01T09:30:00Z or 2026-05-01T11:30:00+02:00."
    # The year check comes first: converting year 1 or 9999 across an offset overflows.
    if not EARLIEST_EVENT_YEAR <= moment.year <= now.year + 1:
        return None, f"Must be after {EARLIEST_EVENT_YEAR}-01-01 and not in the future."
    moment = moment.astimezone(UTC)
    if moment > now + FUTURE_EVENT_TOLERANCE:
        return None, "Cannot be in the future."
    return moment, None


def event_payload_clean(item, *, index: int, now: datetime):
    """Check one item of a `POST /events` batch. Returns (EventPayload, {}) or
    (None, errors). Campaign and asset come back by name, unresolved."""
    if not isinstance(item, dict):
        return None, {"event": [NOT_AN_OBJECT]}
    errors: dict[str, list[str]] = {}
    if len(item) > len(EVENT_FIELDS) or not item.keys() <= EVENT_FIELDS:
        _unknown_fields(item, EVENT_FIELDS, errors)

    external_id = item.get("id")
    if external_id is None or external_id == "":
        errors["id"] = [REQUIRED]
    elif not isinstance(external_id, str):
        errors["id"] = [NOT_A_STRING]
    elif len(external_id) > EVENT_ID_MAX_LENGTH:
        errors["id"] = [_too_long(EVENT_ID_MAX_LENGTH, len(external_id))]

    email = item.get("email")
    if email is None:
        errors["email"] = [REQUIRED]
    elif problem := email_problem(email):
        errors["email"] = [problem]

    type_ = item.get("type")
    if type_ is None:
        errors["type"] = [REQUIRED]
    elif not isinstance(type_, str) or type_ not in TOUCHPOINT_TYPES:
        errors["type"] = [_not_a_choice(TOUCHPOINT_TYPES)]

    occurred_at = item.get("occurred_at")
    if occurred_at is None:
        errors["occurred_at"] = [REQUIRED]
    else:
        occurred_at, problem = occurred_at_parse(occurred_at, now=now)
        if problem:
            errors["occurred_at"] = [problem]

    url = _optional_text(item, "url", URL_MAX_LENGTH, errors)
    channel = _optional_choice(item, "channel", CHANNELS, errors)
    campaign_name = _optional_text(item, "campaign", CAMPAIGN_NAME_MAX_LENGTH, errors)
    asset_title = _optional_text(item, "asset", ASSET_TITLE_MAX_LENGTH, errors)
    properties = item.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        errors["properties"] = [NOT_AN_OBJECT]

    if errors:
        return None, errors
    return EventPayload(
        index=index,
        external_id=external_id,
        email=email.lower(),
        type=type_,
        occurred_at=occurred_at,
        url=url,
        channel=channel,
        campaign_name=campaign_name,
        asset_title=asset_title,
        properties=properties,
    ), {}


def event_batch_clean(payload) -> tuple[list | None, dict[str, list[str]]]:
    """Check the envelope of a `POST /events` body, `{"events": [...]}`; the
    items are checked one by one when ingested. A batch over the limit is
    refused whole."""
    if not isinstance(payload, dict):
        return None, {"body": [NOT_AN_OBJECT]}
    errors: dict[str, list[str]] = {}
    _unknown_fields(payload, frozenset({"events"}), errors)
    events = payload.get("events")
    if events is None:
        errors["events"] = [REQUIRED]
    elif not isinstance(events, list):
        errors["events"] = ["Must be an array of events."]
    elif len(events) > MAX_EVENTS_PER_BATCH:
        errors["events"] = [
            f"At most {MAX_EVENTS_PER_BATCH} events per request; this one has {len(events)}. "
            "Split the batch; nothing was stored."
        ]
    if errors:
        return None, errors
    return events, {}
