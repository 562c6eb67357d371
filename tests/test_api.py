"""The ingestion API (/api/v1/): every status path, idempotent event batches,
set-based ingestion, rate limiting, and how keys are made."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads import ingestion, signals
from leads.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from leads.api_payloads import MAX_BODY_BYTES, MAX_EVENTS_PER_BATCH
from leads.api_representation import SlaStatus, lead_sla_status
from leads.models import (
    ApiKey,
    ApiKeyUsage,
    Channel,
    Lead,
    LeadStage,
    LeadStageChange,
    Touchpoint,
)
from tests.factories import make_account, make_asset, make_campaign, make_lead

LEADS_URL = "/api/v1/leads"
EVENTS_URL = "/api/v1/events"


@pytest.fixture
def raw_key(db):
    return api_key_create(name="Marketing automation")[1]


@pytest.fixture
def api(client, raw_key):
    """POST JSON (or raw bytes) and GET with the key: api.post(url, payload)."""

    class Api:
        key = raw_key

        def post(self, url, payload, *, key=raw_key, raw=None):
            body = raw if raw is not None else json.dumps(payload)
            headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
            return client.post(url, body, content_type="application/json", **headers)

        def get(self, url, *, key=raw_key):
            headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
            return client.get(url, **headers)

    return Api()


def event(n, email="ada@acme.example", **fields):
    return {
        "id": f"evt-{n}",
        "email": email,
        "type": "page_view",
        "occurred_at": "2026-03-02T09:30:00Z",
        **fields,
    }


def _stored():
    return Lead.objects.count(), Touchpoint.objects.count(), LeadStageChange.objects.count()


# --- URLs ---------------------------------------------------------------------


def test_url_names():
    assert reverse("api_leads") == LEADS_URL
    assert reverse("api_events") == EVENTS_URL
    assert reverse("api_lead_detail", args=[7]) == "/api/v1/leads/7"
    assert reverse("api_openapi") == "/api/v1/openapi.json"


# --- POST /leads ----------------------------------------------------------------


def test_post_lead_creates_then_updates(api):
    response = api.post(
        LEADS_URL,
        {
            "email": "Ada@Acme.Example",
            "first_name": " Ada ",
            "last_name": "Lovelace",
            "title": "VP Engineering",
            "employees": 1200,
            "channel": "webinar",
        },
    )
    assert response.status_code == 201
    body = response.json()
    lead = Lead.objects.get()
    assert body["id"] == lead.pk
    assert body["email"] == "ada@acme.example"
    assert body["first_name"] == "Ada"
    assert body["stage"] == "new"
    assert body["segment"] == "enterprise"
    assert body["source"] == {"channel": "webinar", "campaign": None}
    assert body["score"] == {"total": 0, "parts": [], "sla_version": None, "icp_version": None}
    assert lead.stage_changes.get().to_stage == LeadStage.NEW

    # The same email again: an update; blank and null never erase, the source stays.
    response = api.post(
        LEADS_URL,
        {"email": "ada@acme.example", "first_name": "", "last_name": None, "phone": "+44 1",
         "channel": "email"},
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert (body["first_name"], body["last_name"], body["phone"]) == ("Ada", "Lovelace", "+44 1")
    assert body["source"]["channel"] == "webinar"
    assert Lead.objects.count() == 1
    assert LeadStageChange.objects.count() == 1


def test_post_lead_with_campaign_by_name(api):
    campaign = make_campaign(name="Spring launch")
    response = api.post(LEADS_URL, {"email": "a@acme.example", "campaign": "Spring launch"})
    assert response.status_code == 201
    assert response.json()["source"]["campaign"] == "Spring launch"
    assert Lead.objects.get().source_campaign == campaign


def test_post_lead_unknown_campaign_is_a_field_error(api):
    response = api.post(LEADS_URL, {"email": "a@acme.example", "campaign": "Nope"})
    assert response.status_code == 400
    assert "existing campaign" in response.json()["errors"]["campaign"][0]
    assert not Lead.objects.exists()


def test_post_lead_matches_account_by_company_domain_not_public_mail(api):
    # No account can hold a public mail domain (the database refuses one, see
    # test_lead_services), so a lead at gmail.com has nothing to match; what
    # matters is that the lead is not given one as its company domain.
    acme = make_account(name="Acme", domain="acme.example")

    by_email_domain = api.post(LEADS_URL, {"email": "ada@acme.example"}).json()
    assert by_email_domain["account"] == {"id": acme.pk, "name": "Acme"}

    public = api.post(LEADS_URL, {"email": "bob@gmail.com"}).json()
    assert public["account"] is None
    assert public["company_domain"] == ""

    declared = api.post(
        LEADS_URL, {"email": "cy@gmail.com", "company_domain": "https://www.Acme.example/about"}
    ).json()
    assert declared["account"]["id"] == acme.pk
    assert declared["company_domain"] == "acme.example"

    # A public domain given explicitly counts as none: the email's domain decides.
    at_work = api.post(LEADS_URL, {"email": "dee@acme.example", "company_domain": "gmail.com"})
    assert at_work.json()["account"]["id"] == acme.pk
    assert at_work.json()["company_domain"] == "acme.example"
    private = api.post(
        LEADS_URL, {"email": "eve@gmail.com", "company_domain": "https://www.GMAIL.com"}
    ).json()
    assert (private["account"], private["company_domain"]) == (None, "")
    assert Lead.objects.get(email="eve@gmail.com").company_domain == ""


def test_post_lead_retries_as_an_update_when_a_concurrent_request_created_it(api, monkeypatch):
    real_upsert = ingestion.lead_upsert
    calls = []

    def racing_upsert(**kwargs):
        calls.append(kwargs["email"])
        if len(calls) == 1:
            make_lead(email=kwargs["email"])  # the other request won the race
            raise IntegrityError("duplicate key value violates unique constraint")
        return real_upsert(**kwargs)

    monkeypatch.setattr(ingestion, "lead_upsert", racing_upsert)
    response = api.post(LEADS_URL, {"email": "race@acme.example", "title": "CTO"})
    assert response.status_code == 200
    assert Lead.objects.get(email="race@acme.example").title == "CTO"


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "email", "required"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"email": "a@b"}, "email", "valid email"),
        ({"email": 42}, "email", "string"),
        ({"email": "a@" + "b" * 249 + ".com"}, "email", "at most 254"),
        ({"email": "a@acme.example", "first_name": 5}, "first_name", "string"),
        ({"email": "a@acme.example", "first_name": "x" * 101}, "first_name", "at most 100"),
        ({"email": "a@acme.example", "phone": "1" * 51}, "phone", "at most 50"),
        ({"email": "a@acme.example", "employees": "many"}, "employees", "whole number"),
        ({"email": "a@acme.example", "employees": 10.5}, "employees", "whole number"),
        ({"email": "a@acme.example", "employees": True}, "employees", "whole number"),
        ({"email": "a@acme.example", "employees": -1}, "employees", "between"),
        ({"email": "a@acme.example", "employees": 2**31}, "employees", "between"),
        ({"email": "a@acme.example", "channel": "carrier pigeon"}, "channel", "one of"),
        ({"email": "a@acme.example", "channel": ""}, "channel", "one of"),
        ({"email": "a@acme.example", "favourite_colour": "blue"}, "favourite_colour", "Unknown"),
        ([{"email": "a@acme.example"}], "body", "JSON object"),
        ("a@acme.example", "body", "JSON object"),
    ],
)
def test_post_lead_bad_input_is_a_400_with_field_errors(api, payload, field, message):
    response = api.post(LEADS_URL, payload)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["errors"][field][0]
    assert not Lead.objects.exists()


def test_post_lead_takes_whole_floats_as_employees(api):
    response = api.post(LEADS_URL, {"email": "a@acme.example", "employees": 250.0})
    assert response.status_code == 201
    assert response.json()["employees"] == 250


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "Not valid JSON"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{"email": NaN}', "Not valid JSON"),
        (b'{"email": "a@acme.example", "employees": Infinity}', "Not valid JSON"),
        (b"\xff\xfe\x00garbage", "Not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"email": "a@acme.example", "first_name": "\\ud800"}', "surrogate"),
    ],
)
def test_malformed_json_is_a_400(api, raw, message):
    response = api.post(LEADS_URL, None, raw=raw)
    assert response.status_code == 400
    assert message in response.json()["errors"]["body"][0]
    assert not Lead.objects.exists()


def test_nul_characters_are_removed_not_a_500(api):
    response = api.post(LEADS_URL, {"email": "a@acme.example", "first_name": "A\u0000da"})
    assert response.status_code == 201
    assert Lead.objects.get().first_name == "Ada"


# --- GET /leads/{id} --------------------------------------------------------------


def test_get_lead(api, rep):
    campaign = make_campaign(name="Q2 webinar")
    account = make_account(name="Acme", domain="acme.example")
    now = timezone.now()
    lead = make_lead(
        email="ada@acme.example",
        first_name="Ada",
        last_name="Lovelace",
        company="Acme",
        account=account,
        owner=rep,
        stage=LeadStage.MQL,
        score=72,
        source_campaign=campaign,
        source_channel=Channel.WEBINAR,
        mql_at=now - timedelta(hours=2),
        response_due_at=now + timedelta(hours=1),
    )
    response = api.get(f"/api/v1/leads/{lead.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == lead.pk
    assert (body["email"], body["first_name"], body["last_name"], body["company"]) == (
        "ada@acme.example", "Ada", "Lovelace", "Acme",
    )  # fmt: skip
    assert body["stage"] == "mql"
    assert body["score"] == {"total": 72, "parts": [], "sla_version": None, "icp_version": None}
    assert body["owner"] == "ray"
    assert body["account"] == {"id": account.pk, "name": "Acme"}
    assert body["source"] == {"channel": "webinar", "campaign": "Q2 webinar"}
    assert body["sla"]["status"] == "on_time"
    assert body["sla"]["response_due_at"].endswith("Z")
    assert body["created_at"]


@pytest.mark.parametrize("lead_id", ["0", "999999", "abc", "-1", "١٢", "9" * 30])
def test_get_unknown_lead_is_a_json_404(api, lead_id):
    make_lead()
    response = api.get(f"/api/v1/leads/{lead_id}")
    assert response.status_code == 404
    assert response.json() == {"error": "No lead has this id."}


def test_sla_status_is_derived_from_the_clock_fields():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    hour = timedelta(hours=1)

    def status(**fields):
        return lead_sla_status(Lead(**fields), now=now)

    assert status() == SlaStatus.NOT_STARTED
    assert status(mql_at=now - hour) == SlaStatus.NOT_STARTED  # no due time set
    assert status(mql_at=now - hour, response_due_at=now + hour) == SlaStatus.ON_TIME
    assert status(mql_at=now - 2 * hour, response_due_at=now - hour) == SlaStatus.OVERDUE
    assert (
        status(mql_at=now - 2 * hour, response_due_at=now - hour, response_breached_at=now)
        == SlaStatus.BREACHED
    )
    assert (
        status(mql_at=now - 2 * hour, response_due_at=now, first_contact_at=now - hour)
        == SlaStatus.MET
    )
    assert (
        status(mql_at=now - 3 * hour, response_due_at=now - 2 * hour, first_contact_at=now)
        == SlaStatus.BREACHED
    )


# --- POST /events -------------------------------------------------------------------


def test_events_accepted_duplicates_and_rejected_per_item(api):
    lead = make_lead(email="ada@acme.example")
    batch = [
        event(1),
        event(2, type="demo_request", url="https://acme.example/demo"),
        event(3, type="teleported"),  # unknown type
        event(4, occurred_at="2026-03-02T09:30:00"),  # no time zone
        event(1),  # the same id again in the batch
        {"id": "evt-5", "email": "ada@acme.example"},  # type and occurred_at missing
        "not an object",
        event(6, properties={"utm_source": "newsletter", "score": [1, 2]}),
    ]
    response = api.post(EVENTS_URL, {"events": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 3
    assert body["duplicates"] == 1
    rejected = {item["index"]: item["errors"] for item in body["rejected"]}
    assert list(rejected) == [2, 3, 5, 6]
    assert "one of" in rejected[2]["type"][0]
    assert "time zone" in rejected[3]["occurred_at"][0]
    assert set(rejected[5]) == {"type", "occurred_at"}
    assert rejected[6] == {"event": ["Must be a JSON object."]}

    stored = {t.external_id: t for t in Touchpoint.objects.all()}
    assert set(stored) == {"evt-1", "evt-2", "evt-6"}
    assert all(t.lead_id == lead.pk and t.source == "api" for t in stored.values())
    assert stored["evt-2"].type == "demo_request"
    assert stored["evt-2"].url == "https://acme.example/demo"
    assert stored["evt-6"].properties == {"utm_source": "newsletter", "score": [1, 2]}
    assert stored["evt-1"].occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_retrying_a_batch_stores_nothing_new(api):
    batch = [event(n, email=f"p{n % 3}@new.example") for n in range(10)]
    first = api.post(EVENTS_URL, {"events": batch}).json()
    assert first == {"accepted": 10, "duplicates": 0, "rejected": []}
    before = _stored()

    again = api.post(EVENTS_URL, {"events": batch}).json()
    assert again == {"accepted": 0, "duplicates": 10, "rejected": []}
    assert _stored() == before


def test_event_ids_are_unique_per_key_not_globally(api):
    other_key = api_key_create(name="Webinar tool")[1]
    api.post(EVENTS_URL, {"events": [event(1)]})
    response = api.post(EVENTS_URL, {"events": [event(1)]}, key=other_key)
    assert response.json()["accepted"] == 1
    assert Touchpoint.objects.count() == 2


def test_unknown_email_creates_a_lead_sourced_from_its_first_event(api):
    campaign = make_campaign(name="Spring launch")
    make_account(name="Acme", domain="acme.example")
    batch = [
        event(1, email="New@Acme.example", occurred_at="2026-03-02T10:00:00+01:00",
              channel="email", campaign="Spring launch"),
        event(2, email="new@acme.example", occurred_at="2026-03-01T08:00:00Z"),  # earliest
        event(3, email="someone@gmail.com", channel="paid_social"),
    ]  # fmt: skip
    body = api.post(EVENTS_URL, {"events": batch}).json()
    assert body["accepted"] == 3

    lead = Lead.objects.get(email="new@acme.example")
    assert lead.stage == LeadStage.NEW
    # The earliest event has no channel or campaign: they come from the next one.
    assert lead.source_channel == Channel.EMAIL
    assert lead.source_campaign == campaign
    assert lead.created_at == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert lead.company_domain == "acme.example"
    assert lead.account.domain == "acme.example"
    change = lead.stage_changes.get()
    assert (change.from_stage, change.to_stage) == ("", LeadStage.NEW)
    assert "Marketing automation" in change.note

    public = Lead.objects.get(email="someone@gmail.com")
    assert public.account is None
    assert public.company_domain == ""
    assert public.source_channel == Channel.PAID_SOCIAL
    assert LeadStageChange.objects.count() == 2

    # Through the API as well.
    detail = api.get(f"/api/v1/leads/{lead.pk}").json()
    assert detail["stage"] == "new"
    assert detail["account"]["name"] == "Acme"


def test_known_lead_without_a_source_takes_it_from_its_first_new_event(api):
    campaign = make_campaign(name="Retargeting")
    sourceless = make_lead(email="a@acme.example", source_channel="")
    sourced = make_lead(email="b@acme.example", source_channel=Channel.REFERRAL)
    batch = [
        event(1, email="a@acme.example", occurred_at="2026-03-02T10:00:00Z",
              channel="paid_social", campaign="Retargeting"),
        event(2, email="a@acme.example", occurred_at="2026-03-01T10:00:00Z", channel="email"),
        event(3, email="b@acme.example", channel="email", campaign="Retargeting"),
    ]  # fmt: skip
    assert api.post(EVENTS_URL, {"events": batch}).json()["accepted"] == 3
    sourceless.refresh_from_db()
    sourced.refresh_from_db()
    assert sourceless.source_channel == Channel.EMAIL  # the earliest event's
    assert sourceless.source_campaign == campaign  # the earliest one that has a campaign
    assert sourced.source_channel == Channel.REFERRAL  # kept
    assert sourced.source_campaign == campaign  # had none


def test_events_resolve_campaign_and_asset_by_name(api):
    campaign = make_campaign(name="Spring launch")
    asset = make_asset(title="Pricing guide")
    batch = [
        event(1, campaign="Spring launch", asset="Pricing guide", channel="email"),
        event(2, campaign="Autumn launch"),
        event(3, asset="Missing guide"),
    ]
    body = api.post(EVENTS_URL, {"events": batch}).json()
    assert body["accepted"] == 1
    assert [item["index"] for item in body["rejected"]] == [1, 2]
    assert "Autumn launch" in body["rejected"][0]["errors"]["campaign"][0]
    assert "Missing guide" in body["rejected"][1]["errors"]["asset"][0]
    touchpoint = Touchpoint.objects.get()
    assert (touchpoint.campaign, touchpoint.asset, touchpoint.channel) == (
        campaign, asset, "email",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"id": ""}, "id", "required"),
        ({"id": 17}, "id", "string"),
        ({"id": "x" * 201}, "id", "at most 200"),
        ({"email": "nobody"}, "email", "valid email"),
        ({"type": 3}, "type", "one of"),
        ({"occurred_at": "yesterday"}, "occurred_at", "ISO 8601"),
        ({"occurred_at": "2026-03-02"}, "occurred_at", "time zone"),
        ({"occurred_at": 1767225600}, "occurred_at", "string"),
        ({"occurred_at": "1999-12-31T23:59:59Z"}, "occurred_at", "after 2000"),
        ({"occurred_at": "0001-01-01T00:00:00+23:59"}, "occurred_at", "after 2000"),
        ({"occurred_at": "9999-12-31T23:59:59-23:59"}, "occurred_at", "after 2000"),
        ({"url": "u" * 1001}, "url", "at most 1000"),
        ({"channel": "fax"}, "channel", "one of"),
        ({"properties": [1, 2]}, "properties", "JSON object"),
        ({"campaign": 7}, "campaign", "string"),
        ({"colour": "blue"}, "colour", "Unknown field"),
    ],
)
def test_event_field_errors(api, fields, field, message):
    body = api.post(EVENTS_URL, {"events": [event(1, **fields), event(2)]}).json()
    assert body["accepted"] == 1  # the valid item is kept
    [rejected] = body["rejected"]
    assert rejected["index"] == 0
    assert message in rejected["errors"][field][0]


def test_events_in_the_future_are_rejected(api):
    soon = (timezone.now() + timedelta(hours=2)).isoformat()
    later = (timezone.now() + timedelta(days=3)).isoformat()
    body = api.post(EVENTS_URL, {"events": [event(1, occurred_at=soon),
                                            event(2, occurred_at=later)]}).json()  # fmt: skip
    assert body["accepted"] == 1
    assert "future" in body["rejected"][0]["errors"]["occurred_at"][0]


def test_lower_case_rfc3339_timestamps_are_accepted(api):
    body = api.post(EVENTS_URL, {"events": [event(1, occurred_at="2026-03-02t09:30:00z")]})
    assert body.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ([event(1)], "body", "JSON object"),
        ({}, "events", "required"),
        ({"events": None}, "events", "required"),
        ({"events": {"0": event(1)}}, "events", "array"),
        ({"events": [event(1)], "source": "x"}, "source", "Unknown"),
        ({"events": [event(n) for n in range(MAX_EVENTS_PER_BATCH + 1)]}, "events", "At most"),
    ],
)
def test_bad_batches_are_refused_whole(api, payload, field, message):
    response = api.post(EVENTS_URL, payload)
    assert response.status_code == 400
    assert message in response.json()["errors"][field][0]
    assert _stored() == (0, 0, 0)


def test_a_full_batch_of_1000_is_taken(api):
    batch = [event(n, email=f"p{n % 40}@acme.example") for n in range(MAX_EVENTS_PER_BATCH)]
    assert api.post(EVENTS_URL, {"events": batch}).json()["accepted"] == MAX_EVENTS_PER_BATCH
    assert Lead.objects.count() == 40


def test_an_empty_batch_is_fine(api):
    assert api.post(EVENTS_URL, {"events": []}).json() == {
        "accepted": 0, "duplicates": 0, "rejected": [],
    }  # fmt: skip


def test_nul_characters_in_properties_are_removed(api):
    props = {"note\u0000": "a\u0000b", "list": ["\u0000"]}
    assert api.post(EVENTS_URL, {"events": [event(1, properties=props)]}).json()["accepted"] == 1
    assert Touchpoint.objects.get().properties == {"note": "ab", "list": [""]}


def test_oversized_body_is_a_413_and_nothing_is_stored(api):
    padding = "x" * MAX_BODY_BYTES
    response = api.post(EVENTS_URL, {"events": [event(1, properties={"pad": padding})]})
    assert response.status_code == 413
    assert "MB" in response.json()["error"]
    assert _stored() == (0, 0, 0)


def test_touchpoints_recorded_signal_is_sent_after_commit(api, django_capture_on_commit_callbacks):
    known = make_lead(email="ada@acme.example")
    received = []

    def receiver(sender, lead_ids, **kwargs):
        received.append(lead_ids)

    signals.touchpoints_recorded.connect(receiver)
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            api.post(EVENTS_URL, {"events": [event(1), event(2, email="new@acme.example")]})
        assert received == []  # nothing before commit
        for callback in callbacks:
            callback()
        new = Lead.objects.get(email="new@acme.example")
        assert received == [frozenset({known.pk, new.pk})]

        # A batch of duplicates records nothing, so signals nothing.
        with django_capture_on_commit_callbacks(execute=True):
            api.post(EVENTS_URL, {"events": [event(1)]})
        assert len(received) == 1
    finally:
        signals.touchpoints_recorded.disconnect(receiver)


def test_a_lead_created_concurrently_is_picked_up(db, monkeypatch):
    """Another request inserts one of the batch's new emails between our
    SELECT and INSERT: ON CONFLICT skips it, and we use that lead."""
    api_key = api_key_create(name="k")[0]
    real_insert = ingestion._insert_returning

    def racing_insert(objs, **kwargs):
        make_lead(email="raced@acme.example")
        return real_insert(objs, **kwargs)

    monkeypatch.setattr(ingestion, "_insert_returning", racing_insert)
    result = ingestion.events_ingest(
        api_key=api_key,
        items=[event(1, email="raced@acme.example"), event(2, email="fresh@acme.example")],
    )
    assert result.accepted == 2
    assert result.leads_created == 1
    raced = Lead.objects.get(email="raced@acme.example")
    assert raced.touchpoints.count() == 1
    assert not raced.stage_changes.exists()  # its creator writes that row, not us
    assert Lead.objects.get(email="fresh@acme.example").stage_changes.count() == 1


def _batch(size: int, tag: str) -> list[dict]:
    """Half known leads (the tag's, created without a source), half new ones;
    with campaigns and assets."""
    return [
        event(
            f"{tag}-{n}",
            email=f"{tag}-known{n % 20}@acme.example" if n % 2 else f"{tag}-new{n}@beta.example",
            campaign="Spring launch" if n % 3 else None,
            asset="Pricing guide" if n % 5 == 0 else None,
            channel="email",
            properties={"n": n},
        )
        for n in range(size)
    ]


def _known_leads(tag: str):
    for n in range(20):
        make_lead(email=f"{tag}-known{n}@acme.example", source_channel="")


def test_ingestion_query_count_does_not_grow_with_the_batch(db):
    api_key = api_key_create(name="k")[0]
    make_campaign(name="Spring launch")
    make_asset(title="Pricing guide")
    counts = {}
    for size in (50, 500):
        _known_leads(f"b{size}")
        with CaptureQueriesContext(connection) as queries:
            result = ingestion.events_ingest(api_key=api_key, items=_batch(size, f"b{size}"))
        assert result.accepted == size
        assert result.leads_created == size // 2
        counts[size] = len(queries)
    # SAVEPOINT (inside the test's transaction; BEGIN in production),
    # 1 campaigns by name, 1 assets by title, 1 event ids already stored,
    # 1 leads by email, 1 accounts by domain, 1 INSERT leads, 1 INSERT stage
    # changes, 1 INSERT touchpoints, 1 UPDATE sources of the known leads,
    # RELEASE SAVEPOINT.
    assert counts == {50: 11, 500: 11}


def test_whole_request_query_count_is_constant(api, django_assert_max_num_queries):
    make_campaign(name="Spring launch")
    make_asset(title="Pricing guide")
    _known_leads("big")
    api.post(EVENTS_URL, {"events": _batch(5, "warm")})  # last_used_at written once a minute
    # The 11 above, plus 1 key look-up and 1 rate-limit counter.
    with django_assert_max_num_queries(13):
        response = api.post(EVENTS_URL, {"events": _batch(500, "big")})
    assert response.json()["accepted"] == 500


# --- Authentication, rate limit, methods -------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer acc_wrong", "Bearer nope"],
)
@pytest.mark.parametrize("url", [LEADS_URL, EVENTS_URL])
def test_missing_or_invalid_key_is_a_401_and_stores_nothing(client, db, url, authorization):
    make_campaign(name="Spring launch")
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    payload = {"email": "a@acme.example"} if url == LEADS_URL else {"events": [event(1)]}
    response = client.post(url, json.dumps(payload), content_type="application/json", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()
    assert _stored() == (0, 0, 0)
    assert not ApiKeyUsage.objects.exists()


def test_revoked_key_is_a_401(api):
    api_key_revoke(api_key=ApiKey.objects.get())
    response = api.post(EVENTS_URL, {"events": [event(1)]})
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]
    assert _stored() == (0, 0, 0)
    assert api.get("/api/v1/leads/1").status_code == 401


def test_api_is_not_behind_the_login_page(client, db):
    """LoginRequiredMiddleware would redirect; the API answers JSON instead."""
    assert client.get("/api/v1/leads/1").status_code == 401
    assert client.get("/api/v1/no-such-thing").status_code == 404
    assert client.get("/api/v1/no-such-thing").json()["error"]


def test_last_used_at_is_written_at_most_once_a_minute(api):
    api_key = ApiKey.objects.get()
    assert api_key.last_used_at is None
    api.post(EVENTS_URL, {"events": []})
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    api.post(EVENTS_URL, {"events": []})
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=first - timedelta(minutes=2))
    api.post(EVENTS_URL, {"events": []})
    assert ApiKey.objects.get().last_used_at > first


def test_rate_limit_is_a_429_with_retry_after(client, db):
    _, raw = api_key_create(name="Slow tool", rate_limit_per_minute=2)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    body = json.dumps({"events": [event(1)]})
    for _ in range(2):
        response = client.post(EVENTS_URL, body, content_type="application/json", **headers)
        assert response.status_code == 200
    response = client.post(
        EVENTS_URL,
        json.dumps({"events": [event(2)]}),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "2 requests a minute" in response.json()["error"]
    assert not Touchpoint.objects.filter(external_id="evt-2").exists()
    assert ApiKeyUsage.objects.get().requests == 3


def test_old_usage_windows_are_deleted_when_a_new_window_opens(api):
    api_key = ApiKey.objects.get()
    now = timezone.now()
    old = ApiKeyUsage.objects.create(
        api_key=api_key, window_start=now.replace(second=0, microsecond=0) - timedelta(hours=2)
    )
    recent = ApiKeyUsage.objects.create(
        api_key=api_key, window_start=now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    )
    api.post(EVENTS_URL, {"events": []})
    windows = set(ApiKeyUsage.objects.values_list("pk", flat=True))
    assert old.pk not in windows
    assert recent.pk in windows


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("get", LEADS_URL, "POST"),
        ("put", EVENTS_URL, "POST"),
        ("delete", "/api/v1/leads/1", "GET"),
        ("post", "/api/v1/leads/1", "GET"),
        ("post", "/api/v1/openapi.json", "GET"),
    ],
)
def test_wrong_method_is_a_json_405(client, db, method, url, allow):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == allow
    assert response.json()["error"]


# --- The OpenAPI document -------------------------------------------------------------


def test_openapi_document_is_served_without_a_key(client, db):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/leads", "/events", "/leads/{id}", "/openapi.json"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/leads", "/events"):
        responses = document["paths"][path]["post"]["responses"]
        assert {"400", "401", "413", "429"} <= set(responses)


def test_openapi_document_is_valid_openapi_3_1():
    import schemathesis

    from leads.api_schema import openapi_document

    schemathesis.openapi.from_dict(openapi_document()).validate()


# --- Making keys ------------------------------------------------------------------------


def test_create_api_key_command_prints_a_key_that_authenticates(db):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "Marketing automation", "--rate-limit", "600",
                 stdout=out, stderr=err)  # fmt: skip
    raw_key = out.getvalue().strip()
    api_key = api_key_authenticate(raw_key)
    assert api_key is not None
    assert api_key.name == "Marketing automation"
    assert api_key.rate_limit_per_minute == 600
    assert raw_key not in err.getvalue()
    assert api_key.key_hash == ApiKey.hash_key(raw_key) != raw_key


def test_command_key_works_against_the_api(client, db):
    out = StringIO()
    call_command("create_api_key", "Webinar tool", stdout=out, stderr=StringIO())
    response = client.post(
        EVENTS_URL,
        json.dumps({"events": [event(1)]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}",
    )
    assert response.json()["accepted"] == 1


def test_admin_creates_a_key_shows_it_once_and_stores_its_hash(client_for, revops):
    client = client_for(revops)
    response = client.post(
        "/admin/leads/apikey/add/",
        {"name": "Webinar tool", "rate_limit_per_minute": 300},
        follow=True,
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    assert api_key.created_by == revops
    assert api_key.rate_limit_per_minute == 300
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "copy it now" in str(m)]
    raw_key = message.split(" is ", 1)[1].split(" ", 1)[0]
    assert api_key_authenticate(raw_key) == api_key
    assert api_key.key_hash == ApiKey.hash_key(raw_key)
    assert raw_key not in {api_key.prefix, api_key.key_hash, api_key.name}
    # Shown once: the change page does not show it again.
    page = client.get(f"/admin/leads/apikey/{api_key.pk}/change/")
    assert raw_key not in page.content.decode()


def test_get_lead_shows_the_parts_of_its_latest_evaluation(api):
    from sla.scoring import leads_score
    from tests.factories import make_lead, make_touchpoint
    from tests.sla_factories import make_icp, make_sla

    make_sla(), make_icp()
    lead = make_lead(industry="software", employees=5000, segment="enterprise")
    make_touchpoint(lead, type="webinar_attended")
    leads_score([lead.pk], qualify=False)
    body = api.get(f"/api/v1/leads/{lead.pk}").json()
    assert body["score"]["sla_version"] == "v1" and body["score"]["icp_version"] == "v1"
    kinds = {part["kind"] for part in body["score"]["parts"]}
    assert kinds == {"fit", "engagement"}
    assert body["score"]["total"] == 40 + 15
