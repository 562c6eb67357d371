"""Ingestion: the leads and touchpoints marketing tools push through the API.

`events_ingest` is the hot path (thousands of events a second), so it works
on sets: it checks every item in Python, then reads and writes with a fixed
number of queries per batch, whatever its size: one look-up per kind of name,
one for the event ids already stored, one for the leads by email, and one
INSERT per table. `lead_ingest` is a form fill: one lead through
`leads.services.lead_upsert`.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from leads import signals
from leads.api_payloads import LeadPayload, event_payload_clean
from leads.models import (
    Account,
    ApiKey,
    Campaign,
    ContentAsset,
    Lead,
    LeadStage,
    LeadStageChange,
    Touchpoint,
    company_domain_for,
    normalise_domain,
)
from leads.services import LeadUpsert, lead_upsert


class IngestError(Exception):
    """Input that passed its shape checks but names something Accord does not
    know. `errors` is `{"field": ["message", ...]}`."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def _unknown_campaign(name: str) -> str:
    return f"No campaign is named “{name}”; use the exact name of an existing campaign."


def _unknown_asset(title: str) -> str:
    return f"No content asset is titled “{title}”; use the exact title of an existing asset."


def lead_ingest(*, payload: LeadPayload) -> LeadUpsert:
    """Create or update the lead of a form fill (see `lead_upsert`). Raises
    IngestError for an unknown campaign. Safe against a concurrent request
    creating the same email: the loser of the race retries as an update."""
    campaign = None
    if payload.campaign_name:
        campaign = Campaign.objects.filter(name=payload.campaign_name).first()
        if campaign is None:
            raise IngestError({"campaign": [_unknown_campaign(payload.campaign_name)]})
    upsert = partial(
        lead_upsert,
        email=payload.email,
        data=payload.data,
        channel=payload.channel,
        campaign=campaign,
    )
    try:
        return upsert()
    except IntegrityError:
        # Someone created this email between our SELECT ... FOR UPDATE and INSERT.
        return upsert()


@dataclass
class IngestResult:
    """What happened to a batch: counts, and per rejected item its index and errors."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    lead_ids: frozenset[int] = frozenset()  # leads that got new touchpoints
    leads_created: int = 0

    def as_json(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def touchpoints_recorded(lead_ids: frozenset[int]) -> None:
    """Tell the rest of Accord that these leads have new touchpoints. Called
    once per batch after its transaction commits; sends the
    `leads.signals.touchpoints_recorded` signal, which the sla app connects to
    to enqueue re-scoring of these leads."""
    signals.touchpoints_recorded.send(sender=Touchpoint, lead_ids=lead_ids)


def events_ingest(*, api_key: ApiKey, items: list, now: datetime | None = None) -> IngestResult:
    """Store a batch of touchpoints sent with `api_key`.

    Every item is checked on its own: valid items are stored even when others
    are rejected, and an item is stored whole or not at all. An item whose
    `id` this key already sent (earlier, or earlier in the same batch) is a
    duplicate: counted, not stored again, so retries are safe, also when two
    retries race (the unique constraint on (api_key, external_id) decides).

    An unknown email creates a lead: stage new, captured at its earliest event
    in the batch (never later than now), its source channel and campaign from
    its earliest events that carry them, its account matched by the email's
    domain. A known lead without a source channel or campaign takes them the
    same way from its new events.

    Runs in one transaction; the number of queries does not depend on the
    batch size. After commit, `touchpoints_recorded` is called with the leads
    that got new touchpoints. The caller limits the batch size.
    """
    now = now or timezone.now()
    result = IngestResult()
    events = []
    for index, item in enumerate(items):
        event, errors = event_payload_clean(item, index=index, now=now)
        if errors:
            result.rejected.append({"index": index, "errors": errors})
        else:
            events.append(event)

    with transaction.atomic():
        campaigns = _ids_by_name(Campaign, "name", {e.campaign_name for e in events})
        assets = _ids_by_name(ContentAsset, "title", {e.asset_title for e in events})
        events = _reject_unknown_names(events, campaigns, assets, result)
        events = _drop_duplicates(events, api_key, result)
        if events:
            leads = _leads_by_email(events, campaigns, api_key, now, result)
            inserted = _touchpoints_insert(events, leads, campaigns, assets, api_key, now)
            result.accepted = len(inserted)
            # Lost a race with a concurrent retry of the same ids.
            result.duplicates += len(events) - len(inserted)
            new_ids = {external_id for _, external_id in inserted}
            stored = [e for e in events if e.external_id in new_ids]
            _lead_sources_fill(stored, leads, campaigns, now)
            result.lead_ids = frozenset(lead_id for lead_id, _ in inserted)
            transaction.on_commit(partial(touchpoints_recorded, result.lead_ids), robust=True)

    result.rejected.sort(key=lambda rejection: rejection["index"])
    return result


def _ids_by_name(model, field_name: str, names: set[str]) -> dict[str, int]:
    names.discard("")
    if not names:
        return {}
    rows = model.objects.filter(**{f"{field_name}__in": names}).order_by()
    return dict(rows.values_list(field_name, "id"))


def _reject_unknown_names(events, campaigns, assets, result) -> list:
    kept = []
    for event in events:
        errors = {}
        if event.campaign_name and event.campaign_name not in campaigns:
            errors["campaign"] = [_unknown_campaign(event.campaign_name)]
        if event.asset_title and event.asset_title not in assets:
            errors["asset"] = [_unknown_asset(event.asset_title)]
        if errors:
            result.rejected.append({"index": event.index, "errors": errors})
        else:
            kept.append(event)
    return kept


# One index probe per id (LATERAL ... LIMIT 1): the plan stays on the unique
# (api_key, external_id) index even when the table's statistics lag behind
# fast growth, where `external_id IN (...)` drifted to scanning all of the
# key's rows. `<> ''` repeats the index's condition so that it applies.
_STORED_EVENT_IDS = f"""
SELECT sent.external_id
FROM unnest(%s::text[]) AS sent(external_id)
CROSS JOIN LATERAL (
    SELECT 1 FROM {Touchpoint._meta.db_table} AS touchpoint
    WHERE touchpoint.api_key_id = %s
      AND touchpoint.external_id = sent.external_id
      AND touchpoint.external_id <> ''
    LIMIT 1
) AS stored
"""


def _drop_duplicates(events, api_key, result) -> list:
    """Events whose id is new for this key, the first of each id in the batch."""
    seen: set[str] = set()
    fresh = []
    for event in events:
        if event.external_id in seen:
            result.duplicates += 1
        else:
            seen.add(event.external_id)
            fresh.append(event)
    if not fresh:
        return fresh
    with connection.cursor() as cursor:
        cursor.execute(_STORED_EVENT_IDS, [list(seen), api_key.pk])
        stored = {external_id for (external_id,) in cursor.fetchall()}
    if stored:
        result.duplicates += sum(1 for event in fresh if event.external_id in stored)
        fresh = [event for event in fresh if event.external_id not in stored]
    return fresh


@dataclass(slots=True)
class _LeadSource:
    id: int
    channel: str
    campaign_id: int | None
    created: bool = False  # by this batch, with its sources already set


def _first_sources(events, campaigns) -> dict[str, tuple]:
    """Per email: (earliest occurred_at, earliest channel, earliest campaign id)."""
    firsts: dict[str, list] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        first = firsts.get(event.email)
        if first is None:
            firsts[event.email] = [
                event.occurred_at,
                event.channel,
                campaigns.get(event.campaign_name),
            ]
            continue
        if not first[1] and event.channel:
            first[1] = event.channel
        if first[2] is None and event.campaign_name:
            first[2] = campaigns[event.campaign_name]
    return {email: tuple(first) for email, first in firsts.items()}


def _lead_sources_of(emails):
    return (
        Lead.objects.filter(email__in=emails)
        .order_by()
        .values_list("email", "id", "source_channel", "source_campaign_id")
    )


def _leads_by_email(events, campaigns, api_key, now, result) -> dict[str, _LeadSource]:
    """The leads of the batch's emails, creating the missing ones."""
    emails = {event.email for event in events}
    leads = {
        email: _LeadSource(id=lead_id, channel=channel, campaign_id=campaign_id)
        for email, lead_id, channel, campaign_id in _lead_sources_of(emails)
    }
    missing = emails - leads.keys()
    if not missing:
        return leads

    firsts = _first_sources([e for e in events if e.email in missing], campaigns)
    domains = {email: normalise_domain(company_domain_for(email)) for email in missing}
    accounts = _ids_by_name(Account, "domain", set(domains.values()))
    new_leads = []
    # Sorted, so that concurrent batches take the unique index's locks in one order.
    for email in sorted(missing):
        first_at, channel, campaign_id = firsts[email]
        captured_at = min(first_at, now)
        new_leads.append(
            Lead(
                email=email,
                company_domain=domains[email],
                account_id=accounts.get(domains[email]),
                source_channel=channel,
                source_campaign_id=campaign_id,
                created_at=captured_at,
                stage_changed_at=captured_at,
            )
        )
    created = dict(_insert_returning(new_leads, conflict="(email)", returning="email, id"))
    LeadStageChange.objects.bulk_create(
        LeadStageChange(
            lead_id=created[lead.email],
            to_stage=LeadStage.NEW,
            note=f"Captured from an event sent with the API key “{api_key.name}”.",
            changed_at=lead.created_at,
        )
        for lead in new_leads
        if lead.email in created
    )
    result.leads_created = len(created)
    for lead in new_leads:
        if lead.email in created:
            leads[lead.email] = _LeadSource(
                created[lead.email], lead.source_channel, lead.source_campaign_id, created=True
            )
    raced = missing - created.keys()
    if raced:
        # A concurrent request created these between our SELECT and INSERT.
        for email, lead_id, channel, campaign_id in _lead_sources_of(raced):
            leads[email] = _LeadSource(lead_id, channel, campaign_id)
    return leads


def _insert_returning(objs: list, *, conflict: str, returning: str) -> list[tuple]:
    """INSERT model instances in one statement, skipping rows that conflict on
    `conflict`; returns the `returning` columns of the rows inserted. Unlike
    bulk_create(ignore_conflicts=True), this tells which rows were inserted.
    Values are prepared by the model's fields, defaults included."""
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    params = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields)
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * len(objs))} "
        f"ON CONFLICT {conflict} DO NOTHING RETURNING {returning}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


_TOUCHPOINTS_INSERT = f"""
INSERT INTO {Touchpoint._meta.db_table}
    (lead_id, type, occurred_at, channel, campaign_id, asset_id, url, properties,
     source, api_key_id, external_id, created_at)
SELECT t.lead_id, t.type, t.occurred_at, t.channel, t.campaign_id, t.asset_id, t.url,
       t.properties::jsonb, %s, %s, t.external_id, %s
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::bigint[],
            %s::bigint[], %s::text[], %s::text[], %s::text[])
     AS t(lead_id, type, occurred_at, channel, campaign_id, asset_id, url, properties,
          external_id)
ORDER BY t.external_id
ON CONFLICT DO NOTHING
RETURNING lead_id, external_id
"""


def _touchpoints_insert(events, leads, campaigns, assets, api_key, now) -> list[tuple[int, str]]:
    """One INSERT for the whole batch; a row whose (api_key, external_id) is
    already stored is skipped. Returns (lead_id, external_id) per row inserted.
    Sorted by id, so that concurrent batches take index locks in one order."""
    columns = ([], [], [], [], [], [], [], [], [])
    (lead_ids, types, times, channels, campaign_ids, asset_ids, urls, properties, ids) = columns
    dumps = json.dumps
    for event in events:
        lead_ids.append(leads[event.email].id)
        types.append(event.type)
        times.append(event.occurred_at)
        channels.append(event.channel)
        campaign_ids.append(campaigns.get(event.campaign_name))
        asset_ids.append(assets.get(event.asset_title))
        urls.append(event.url)
        properties.append(dumps(event.properties))
        ids.append(event.external_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _TOUCHPOINTS_INSERT, [Touchpoint.Source.API.value, api_key.pk, now, *columns]
        )
        return cursor.fetchall()


_LEAD_SOURCES_FILL = f"""
WITH first AS MATERIALIZED (
    SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) AS f(lead_id, channel, campaign_id)
), locked AS MATERIALIZED (
    -- Lock in id order, so that concurrent batches cannot deadlock here.
    SELECT id FROM {Lead._meta.db_table}
    WHERE id IN (SELECT lead_id FROM first)
    ORDER BY id
    FOR NO KEY UPDATE
)
UPDATE {Lead._meta.db_table} AS lead
SET source_channel = CASE WHEN lead.source_channel = '' THEN first.channel
                          ELSE lead.source_channel END,
    source_campaign_id = COALESCE(lead.source_campaign_id, first.campaign_id),
    updated_at = %s
FROM first
WHERE lead.id = first.lead_id
  AND lead.id IN (SELECT id FROM locked)
  AND ((lead.source_channel = '' AND first.channel <> '')
       OR (lead.source_campaign_id IS NULL AND first.campaign_id IS NOT NULL))
"""


def _lead_sources_fill(stored, leads, campaigns, now) -> None:
    """Known leads without a source channel or campaign take them from their
    earliest stored event that has one (as `lead_upsert` does for a form fill)."""
    wanting = set()
    for event in stored:
        lead = leads[event.email]
        if not lead.created and (
            (not lead.channel and event.channel)
            or (lead.campaign_id is None and event.campaign_name)
        ):
            wanting.add(event.email)
    if not wanting:
        return
    firsts = _first_sources([e for e in stored if e.email in wanting], campaigns)
    lead_ids, channels, campaign_ids = [], [], []
    for email, (_, channel, campaign_id) in firsts.items():
        lead_ids.append(leads[email].id)
        channels.append(channel)
        campaign_ids.append(campaign_id)
    with connection.cursor() as cursor:
        cursor.execute(_LEAD_SOURCES_FILL, [lead_ids, channels, campaign_ids, now])
