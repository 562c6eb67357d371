"""The ingestion API's OpenAPI 3.1 document, served at /api/v1/openapi.json.

Written by hand. Limits, enums and patterns are taken from the same constants
that `leads.api_payloads` checks with, so the document cannot drift from the
checks; tests/test_api_schema.py runs schemathesis against it.
"""

from functools import cache

from leads import api_payloads as payloads
from leads.api_representation import SlaStatus
from leads.models import Channel, LeadStage, Segment, TouchpointType

API_VERSION = "1.0.0"

# No `format: email`: validators disagree on what that admits. The pattern is
# exactly what the API checks.
_EMAIL = {
    "type": "string",
    "maxLength": payloads.EMAIL_MAX_LENGTH,
    "pattern": f"^{payloads.EMAIL_LOCAL_PATTERN}@{payloads.EMAIL_DOMAIN_PATTERN}$",
    "description": (
        "An email address: an unquoted local part and a domain name, at most "
        f"{payloads.EMAIL_MAX_LENGTH} characters in all (its domain becomes the lead's "
        "company domain). Matched case-insensitively; stored lower-case."
    ),
    "examples": ["ada@acme.example"],
}


def _text(max_length: int, description: str = "") -> dict:
    schema = {"type": ["string", "null"], "maxLength": max_length}
    if description:
        schema["description"] = description
    return schema


def _nullable_enum(values, description: str) -> dict:
    return {"type": ["string", "null"], "enum": [*values, None], "description": description}


_CHANNEL = _nullable_enum(Channel.values, "The marketing channel.")
_DATE_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

_FIELD_ERRORS = {
    "type": "object",
    "description": "Field name (or `body`) -> messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
}

_LEAD_INPUT = {
    "type": "object",
    "description": (
        "A form fill. Fields that are absent, null or blank are not given: they never "
        "erase what is known. Text is trimmed. Unknown fields are rejected."
    ),
    "required": ["email"],
    "additionalProperties": False,
    "properties": {
        "email": _EMAIL,
        **{name: _text(max_length) for name, max_length in payloads.LEAD_TEXT_FIELDS.items()},
        "employees": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": payloads.EMPLOYEES_MAX,
        },
        "channel": {
            **_CHANNEL,
            "description": "The channel of the form fill; becomes the lead's source "
            "channel if it has none.",
        },
        "campaign": _text(
            payloads.CAMPAIGN_NAME_MAX_LENGTH,
            "The exact name of an existing campaign (an unknown name is a 400 field "
            "error); becomes the lead's source campaign if it has none.",
        ),
    },
}

_LEAD = {
    "type": "object",
    "required": [
        "id",
        "email",
        "first_name",
        "last_name",
        "title",
        "phone",
        "company",
        "company_domain",
        "country",
        "industry",
        "employees",
        "segment",
        "account",
        "stage",
        "score",
        "is_high_intent",
        "owner",
        "source",
        "sla",
        "created_at",
        "updated_at",
    ],
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": "string"},
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "title": {"type": "string"},
        "phone": {"type": "string"},
        "company": {"type": "string"},
        "company_domain": {"type": "string"},
        "country": {"type": "string"},
        "industry": {"type": "string"},
        "employees": {"type": ["integer", "null"]},
        "segment": {"type": ["string", "null"], "enum": [*Segment.values, None]},
        "account": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
            ]
        },
        "stage": {"type": "string", "enum": LeadStage.values},
        "score": {
            "type": "object",
            "required": ["total", "parts", "sla_version", "icp_version"],
            "properties": {
                "total": {"type": "integer", "minimum": 0, "maximum": 100},
                "parts": {
                    "type": "array",
                    "description": "What the score is made of: fit rules matched, engagement "
                    "per group after decay and caps, and any cap applied. Empty before the "
                    "lead's first evaluation.",
                    "items": {
                        "type": "object",
                        "required": ["kind", "label", "points"],
                        "properties": {
                            "kind": {"type": "string", "enum": ["fit", "engagement", "cap"]},
                            "label": {"type": "string"},
                            "points": {"type": "number"},
                        },
                    },
                },
                "sla_version": {
                    "type": ["string", "null"],
                    "description": "The SLA version of the latest evaluation, e.g. v2.",
                },
                "icp_version": {"type": ["string", "null"]},
            },
        },
        "is_high_intent": {"type": "boolean"},
        "owner": {"type": ["string", "null"], "description": "The owner's username."},
        "source": {
            "type": "object",
            "required": ["channel", "campaign"],
            "properties": {
                "channel": {"type": ["string", "null"], "enum": [*Channel.values, None]},
                "campaign": {"type": ["string", "null"]},
            },
        },
        "sla": {
            "type": "object",
            "required": [
                "status",
                "mql_at",
                "response_due_at",
                "first_contact_at",
                "response_breached_at",
            ],
            "properties": {
                "status": {
                    "type": "string",
                    "enum": list(SlaStatus.ALL),
                    "description": "not_started: no response clock; on_time: clock running; "
                    "overdue: due time passed without contact; breached: breach recorded or "
                    "contacted late; met: contacted by the due time.",
                },
                "mql_at": _DATE_TIME_OR_NULL,
                "response_due_at": _DATE_TIME_OR_NULL,
                "first_contact_at": _DATE_TIME_OR_NULL,
                "response_breached_at": _DATE_TIME_OR_NULL,
            },
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_EVENT = {
    "type": "object",
    "description": "One touchpoint. Unknown fields are rejected.",
    "required": ["id", "email", "type", "occurred_at"],
    "additionalProperties": False,
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": payloads.EVENT_ID_MAX_LENGTH,
            "description": "The event's id in the sending system, unique per API key. "
            "An id the key already sent is counted as a duplicate and not stored again.",
        },
        "email": {
            **_EMAIL,
            "description": _EMAIL["description"] + " An unknown email creates a lead.",
        },
        "type": {
            "type": "string",
            "enum": TouchpointType.values,
            "description": "demo_request and contact_request are hand-raises.",
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with a time zone (Z or an offset); a time without one is "
            f"rejected. From {payloads.EARLIEST_EVENT_YEAR}-01-01 until a day from now.",
            "examples": ["2026-05-01T09:30:00Z"],
        },
        "url": _text(payloads.URL_MAX_LENGTH),
        "channel": _CHANNEL,
        "campaign": _text(
            payloads.CAMPAIGN_NAME_MAX_LENGTH, "The exact name of an existing campaign."
        ),
        "asset": _text(
            payloads.ASSET_TITLE_MAX_LENGTH, "The exact title of an existing content asset."
        ),
        "properties": {
            "type": ["object", "null"],
            "description": "Anything else about the event, stored as given.",
        },
    },
}

_EVENT_BATCH = {
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {
        "events": {
            "type": "array",
            "maxItems": payloads.MAX_EVENTS_PER_BATCH,
            "items": {"$ref": "#/components/schemas/Event"},
        }
    },
}

_INGEST_RESULT = {
    "type": "object",
    "required": ["accepted", "duplicates", "rejected"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0, "description": "Events stored."},
        "duplicates": {
            "type": "integer",
            "minimum": 0,
            "description": "Events whose id this key had sent before (not stored again).",
        },
        "rejected": {
            "type": "array",
            "description": "Items not stored, with why; in batch order.",
            "items": {
                "type": "object",
                "required": ["index", "errors"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "errors": {"$ref": "#/components/schemas/FieldErrors/properties/errors"},
                },
            },
        },
    },
}


def _json(schema_ref: str, description: str, headers: dict | None = None) -> dict:
    response = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": schema_ref}}},
    }
    if headers:
        response["headers"] = headers
    return response


_RESPONSES = {
    "BadRequest": _json(
        "#/components/schemas/FieldErrors",
        "The request is malformed: not JSON, not an object, or fields with errors.",
    ),
    "Unauthorized": _json(
        "#/components/schemas/Error",
        "The bearer key is missing, unknown or revoked. Nothing was stored.",
        {
            "WWW-Authenticate": {
                "required": True,
                "schema": {"type": "string"},
                "description": "Bearer",
            }
        },
    ),
    "NotFound": _json("#/components/schemas/Error", "No such lead."),
    "PayloadTooLarge": _json(
        "#/components/schemas/Error",
        f"The body is over {payloads.MAX_BODY_BYTES // (1024 * 1024)} MB. Nothing was stored.",
    ),
    "TooManyRequests": _json(
        "#/components/schemas/Error",
        "The key's requests-per-minute limit is used up. Nothing was stored.",
        {
            "Retry-After": {
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
                "description": "Seconds until the next one-minute window.",
            }
        },
    ),
}

_ERROR_RESPONSES = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "429": {"$ref": "#/components/responses/TooManyRequests"},
}


def _json_body(schema_ref: str) -> dict:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": schema_ref}}},
    }


@cache
def openapi_document() -> dict:
    """The OpenAPI 3.1 document (built once per process)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Accord ingestion API",
            "version": API_VERSION,
            "description": (
                "Marketing tools push leads and behaviour into Accord. Authenticate with an "
                "API key: `Authorization: Bearer <key>` (created in the admin or with "
                "`manage.py create_api_key`). Each key has a requests-per-minute limit. "
                "Request bodies are JSON, at most "
                f"{payloads.MAX_BODY_BYTES // (1024 * 1024)} MB. NUL characters, which "
                "Accord cannot store, are removed from strings. Errors are JSON: "
                '`{"error": "..."}`, or `{"errors": {"field": ["..."]}}` for bad input.'
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/leads": {
                "post": {
                    "operationId": "lead_upsert",
                    "summary": "Create or update a lead by email (a form fill)",
                    "requestBody": _json_body("#/components/schemas/LeadInput"),
                    "responses": {
                        "200": _json("#/components/schemas/Lead", "The lead existed; updated."),
                        "201": _json("#/components/schemas/Lead", "The lead was created."),
                        "400": {"$ref": "#/components/responses/BadRequest"},
                        "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                        **_ERROR_RESPONSES,
                    },
                }
            },
            "/events": {
                "post": {
                    "operationId": "events_ingest",
                    "summary": f"Record up to {payloads.MAX_EVENTS_PER_BATCH} touchpoints",
                    "description": (
                        "Each event is checked on its own: valid events are stored even when "
                        "others are not, and an event is stored whole or not at all. Events "
                        "that do not match the Event schema, or name an unknown campaign or "
                        "asset, are listed in `rejected` with their index and field errors; "
                        "the response is still 200. Retrying a batch is safe: events already "
                        "stored for the key are counted as duplicates. A batch over "
                        f"{payloads.MAX_EVENTS_PER_BATCH} events is refused whole (400)."
                    ),
                    "requestBody": _json_body("#/components/schemas/EventBatch"),
                    "responses": {
                        "200": _json("#/components/schemas/IngestResult", "The batch was taken."),
                        "400": {"$ref": "#/components/responses/BadRequest"},
                        "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                        **_ERROR_RESPONSES,
                    },
                }
            },
            "/leads/{id}": {
                "get": {
                    "operationId": "lead_get",
                    "summary": "A lead: stage, score and its parts, owner, SLA status",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    ],
                    "responses": {
                        "200": _json("#/components/schemas/Lead", "The lead."),
                        "404": {"$ref": "#/components/responses/NotFound"},
                        **_ERROR_RESPONSES,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An Accord API key (starts with `acc_`).",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "FieldErrors": {
                    "type": "object",
                    "required": ["errors"],
                    "properties": {"errors": _FIELD_ERRORS},
                },
                "LeadInput": _LEAD_INPUT,
                "Lead": _LEAD,
                "Event": _EVENT,
                "EventBatch": _EVENT_BATCH,
                "IngestResult": _INGEST_RESULT,
            },
            "responses": _RESPONSES,
        },
    }
