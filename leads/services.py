"""Every write to the shared record. One function per state change.

Stage transitions lock the row (`select_for_update`), check the transition is
allowed from the stage the row is in *now*, write the change and its history
row in one transaction, and bump the row's `version`. Callers that showed the
user a version (boards, forms) pass `expected_version` and get a
`ConflictError` when someone else moved the record in between.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.audit import audit_bulk, audit_record
from leads import permissions
from leads.models import (
    PUBLIC_MAIL_DOMAINS,
    Account,
    Activity,
    Campaign,
    Channel,
    Competitor,
    FeedbackReason,
    Lead,
    LeadFeedback,
    LeadStage,
    LeadStageChange,
    Opportunity,
    OpportunityStage,
    OpportunityStageChange,
    Product,
    Segment,
    Touchpoint,
    lead_company_domain,
    normalise_domain,
)


class TransitionError(Exception):
    """A stage change that the record's current stage does not allow."""


class ConflictError(Exception):
    """Someone else changed the record since the caller last saw it."""

    def __init__(self, message: str, *, current):
        super().__init__(message)
        self.current = current


# Lead transitions: name -> (stages it may start from, stage it ends in).
LEAD_TRANSITIONS = {
    "mark_mql": ((LeadStage.NEW, LeadStage.RECYCLED), LeadStage.MQL),
    "accept": ((LeadStage.MQL,), LeadStage.SAL),
    "reject": ((LeadStage.MQL, LeadStage.SAL), LeadStage.REJECTED),
    "qualify": ((LeadStage.SAL,), LeadStage.SQL),
    "convert": ((LeadStage.SQL,), LeadStage.OPPORTUNITY),
    "disqualify": (
        (LeadStage.NEW, LeadStage.MQL, LeadStage.SAL, LeadStage.SQL, LeadStage.RECYCLED),
        LeadStage.DISQUALIFIED,
    ),
    "win": ((LeadStage.OPPORTUNITY,), LeadStage.CUSTOMER),
}

TRANSITION_LABELS = {
    "mark_mql": "mark as MQL",
    "accept": "accept",
    "reject": "reject",
    "qualify": "qualify as SQL",
    "convert": "convert to an opportunity",
    "disqualify": "disqualify",
    "win": "mark as customer",
}


def lead_allowed_transitions(lead: Lead) -> set[str]:
    return {name for name, (sources, _) in LEAD_TRANSITIONS.items() if lead.stage in sources}


def _lock_lead(lead: Lead, expected_version: int | None) -> Lead:
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    if expected_version is not None and locked.version != expected_version:
        raise ConflictError(
            f"{locked} was changed by someone else (it is now {locked.get_stage_display()}). "
            "Your change was not applied; here is the lead as it is now.",
            current=locked,
        )
    return locked


def _instance_refresh(instance, current) -> None:
    """Give the caller's (possibly stale) instance the row's current values.
    Setting a foreign key's id drops the related object cached for the old one."""
    for field in instance._meta.concrete_fields:
        setattr(instance, field.attname, getattr(current, field.attname))


def _lead_transition(
    *,
    lead: Lead,
    name: str,
    actor,
    reason: FeedbackReason | None = None,
    note: str = "",
    expected_version: int | None = None,
    when: datetime | None = None,
    extra_updates: dict | Callable[[Lead], dict] | None = None,
) -> Lead:
    """Move a locked lead along one transition and write the history row.
    `extra_updates` are more fields to write, or a function of the locked row
    giving them (for updates that depend on the row as it is now, not as the
    caller read it). Must run inside a transaction (the callers are atomic)."""
    sources, target = LEAD_TRANSITIONS[name]
    locked = _lock_lead(lead, expected_version)
    if callable(extra_updates):
        extra_updates = extra_updates(locked)
    if locked.stage not in sources:
        raise TransitionError(
            f"Cannot {TRANSITION_LABELS[name]} {locked}: the lead is "
            f"{locked.get_stage_display()}, and only "
            f"{', '.join(LeadStage(s).label for s in sources)} leads can be."
        )
    when = when or timezone.now()
    sources_stage = locked.stage
    LeadStageChange.objects.create(
        lead=locked,
        from_stage=locked.stage,
        to_stage=target,
        actor=actor,
        reason=reason,
        note=note,
        changed_at=when,
    )
    updates = {"stage": target, "stage_changed_at": when, **(extra_updates or {})}
    for field, value in updates.items():
        setattr(locked, field, value)
    locked.version += 1
    locked.save(update_fields=[*updates, "version", "updated_at"])
    audit_record(
        actor=actor,
        action=f"lead.{name}",
        obj=locked,
        changes={"stage": [sources_stage, target], **({"reason": reason.code} if reason else {})},
    )
    # The caller's instance reflects the new state too.
    lead.__dict__.update({k: getattr(locked, k) for k in [*updates, "version"]})
    return locked


def _check_reason(reason: FeedbackReason | None, applies_to: str) -> FeedbackReason:
    if reason is None:
        raise TransitionError("A reason is required.")
    if not reason.is_active or applies_to not in reason.applies_to:
        raise TransitionError(f"“{reason}” is not a reason that can be used here.")
    return reason


def _feedback(
    *,
    lead: Lead,
    author,
    verdict: str,
    reason=None,
    note="",
    objections=(),
    competitor=None,
    when=None,
) -> LeadFeedback:
    feedback = LeadFeedback.objects.create(
        lead=lead,
        author=author,
        verdict=verdict,
        reason=reason,
        note=note,
        competitor=competitor,
        campaign_id=lead.source_campaign_id,
        channel=lead.source_channel,
        created_at=when or timezone.now(),
    )
    if objections:
        feedback.objections.set(objections)
    return feedback


MQL_STAMP_FIELDS = ("owner_id", "sla_version_id", "icp_version_id", "is_high_intent",
                    "response_due_at")  # fmt: skip


@transaction.atomic
def leads_mark_mql(*, stamps: dict[int, dict], when: datetime, notes: dict[int, str]) -> list[int]:
    """new/recycled -> mql for many leads at once: the sla app qualifies leads
    with this, passing per lead the stamps of the SLA in force (owner, SLA and
    ICP versions, intent, response due time) and a note for the history row.

    Locks the leads (in id order), skips any that are no longer new or
    recycled (someone else qualified or worked them), then one UPDATE and one
    history insert, whatever the count. Returns the ids that moved."""
    sources, target = LEAD_TRANSITIONS["mark_mql"]
    current = dict(
        Lead.objects.select_for_update()
        .filter(pk__in=stamps, stage__in=sources)
        .order_by("pk")
        .values_list("pk", "stage")
    )
    if not current:
        return []
    ids = sorted(current)
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(ids))
    params = []
    for pk in ids:
        stamp = stamps[pk]
        params += [pk, *(stamp.get(field) for field in MQL_STAMP_FIELDS)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE leads_lead AS lead
               SET stage = %s, stage_changed_at = %s, mql_at = %s, first_contact_at = NULL,
                   response_breached_at = NULL, version = lead.version + 1, updated_at = %s,
                   owner_id = v.owner_id::integer, sla_version_id = v.sla_version_id::bigint,
                   icp_version_id = v.icp_version_id::bigint,
                   is_high_intent = v.is_high_intent::boolean,
                   response_due_at = v.response_due_at::timestamptz
              FROM (VALUES {rows}) AS v(id, {", ".join(MQL_STAMP_FIELDS)})
             WHERE lead.id = v.id::bigint
            """,
            [target, when, when, when, *params],
        )
    audit_bulk(
        actor=None,
        action="lead.mark_mql",
        model=Lead,
        rows=[(pk, f"lead {pk}", {"stage": [current[pk], target], **stamps[pk]}) for pk in ids],
    )
    LeadStageChange.objects.bulk_create(
        LeadStageChange(
            lead_id=pk,
            from_stage=current[pk],
            to_stage=target,
            note=notes.get(pk, ""),
            changed_at=when,
        )
        for pk in ids
    )
    return ids


@transaction.atomic
def lead_accept(*, lead: Lead, actor, note: str = "", expected_version: int | None = None) -> Lead:
    """mql -> sal: a seller takes the lead. The accepting seller becomes its owner
    if it had none."""
    permissions.require(permissions.can_work_lead(actor, lead), "You cannot work this lead.")
    lead = _lead_transition(
        lead=lead,
        name="accept",
        actor=actor,
        note=note,
        expected_version=expected_version,
        # Decided on the locked row: an assignment committed since the caller
        # read the lead is kept.
        extra_updates=lambda locked: {} if locked.owner_id else {"owner": actor},
    )
    _feedback(lead=lead, author=actor, verdict=LeadFeedback.Verdict.ACCEPTED, note=note)
    return lead


@transaction.atomic
def lead_reject(
    *,
    lead: Lead,
    actor,
    reason: FeedbackReason,
    note: str = "",
    objections=(),
    competitor: Competitor | None = None,
    expected_version: int | None = None,
) -> Lead:
    """mql/sal -> rejected -> recycled: sales returns the lead to marketing for
    nurture, with a reason code (required) and what it heard."""
    permissions.require(permissions.can_work_lead(actor, lead), "You cannot work this lead.")
    _check_reason(reason, FeedbackReason.AppliesTo.REJECT)
    when = timezone.now()
    lead = _lead_transition(
        lead=lead,
        name="reject",
        actor=actor,
        reason=reason,
        note=note,
        expected_version=expected_version,
        when=when,
    )
    _feedback(
        lead=lead,
        author=actor,
        verdict=LeadFeedback.Verdict.REJECTED,
        reason=reason,
        note=note,
        objections=objections,
        competitor=competitor,
        when=when,
    )
    # Back to marketing: the same moment, a second history row, no owner.
    LeadStageChange.objects.create(
        lead=lead,
        from_stage=LeadStage.REJECTED,
        to_stage=LeadStage.RECYCLED,
        actor=actor,
        note="Returned to marketing for nurture.",
        changed_at=when,
    )
    Lead.objects.filter(pk=lead.pk).update(
        stage=LeadStage.RECYCLED, owner=None, version=F("version") + 1, updated_at=when
    )
    lead.refresh_from_db()
    return lead


@transaction.atomic
def lead_qualify(*, lead: Lead, actor, note: str = "", expected_version: int | None = None) -> Lead:
    """sal -> sql: the seller confirmed a real buying need."""
    permissions.require(permissions.can_work_lead(actor, lead), "You cannot work this lead.")
    return _lead_transition(
        lead=lead, name="qualify", actor=actor, note=note, expected_version=expected_version
    )


@transaction.atomic
def lead_disqualify(
    *,
    lead: Lead,
    actor,
    reason: FeedbackReason,
    note: str = "",
    objections=(),
    competitor: Competitor | None = None,
    expected_version: int | None = None,
) -> Lead:
    """Any open stage -> disqualified, with a reason code (required)."""
    permissions.require(
        permissions.can_disqualify_lead(actor, lead), "You cannot disqualify this lead."
    )
    _check_reason(reason, FeedbackReason.AppliesTo.DISQUALIFY)
    lead = _lead_transition(
        lead=lead,
        name="disqualify",
        actor=actor,
        reason=reason,
        note=note,
        expected_version=expected_version,
    )
    _feedback(
        lead=lead,
        author=actor,
        verdict=LeadFeedback.Verdict.DISQUALIFIED,
        reason=reason,
        note=note,
        objections=objections,
        competitor=competitor,
    )
    return lead


@transaction.atomic
def lead_convert(
    *,
    lead: Lead,
    actor,
    name: str = "",
    amount: Decimal = Decimal(0),
    expected_close_on: date | None = None,
    product: Product | None = None,
    expected_version: int | None = None,
) -> Opportunity:
    """sql -> opportunity: open a deal on the lead's account, with the lead as
    its source. A lead without an account gets one from its company details.
    The lead's touchpoints stay on the lead, reachable from the deal."""
    permissions.require(permissions.can_work_lead(actor, lead), "You cannot work this lead.")
    locked = _lock_lead(lead, expected_version)
    account = locked.account
    if account is None:
        if not locked.company and not locked.company_domain:
            raise TransitionError(
                f"Cannot convert {locked}: the lead has no account or company. "
                "Add the company first."
            )
        account = account_for_company(
            name=locked.company or locked.company_domain,
            domain=locked.company_domain,
            defaults={"industry": locked.industry, "employees": locked.employees,
                      "country": locked.country, "region": locked.region},
        )  # fmt: skip
        Lead.objects.filter(pk=locked.pk).update(account=account)
        lead.account = account
    when = timezone.now()
    lead = _lead_transition(
        lead=lead, name="convert", actor=actor, when=when, extra_updates={"account": account}
    )
    opportunity = Opportunity.objects.create(
        name=name or f"{account.name}: {lead.full_name or lead.email}",
        account=account,
        source_lead=lead,
        owner=lead.owner or actor,
        product=product,
        stage=OpportunityStage.DISCOVERY,
        stage_changed_at=when,
        amount=amount,
        expected_close_on=expected_close_on,
        source_channel=lead.source_channel,
        is_marketing_sourced=lead.source_channel in Channel.marketing(),
        created_at=when,
    )
    OpportunityStageChange.objects.create(
        opportunity=opportunity,
        to_stage=OpportunityStage.DISCOVERY,
        actor=actor,
        note=f"Converted from lead {lead}.",
        changed_at=when,
    )
    audit_record(
        actor=actor,
        action="opportunity.create",
        obj=opportunity,
        changes={"source_lead": lead.pk, "amount": str(amount)},
    )
    return opportunity


@transaction.atomic
def lead_assign(*, lead: Lead, actor, owner) -> Lead:
    """Give a lead to another seller, or to nobody (managers and RevOps admins).

    Locks the row and decides on it as it is now: who may reassign it, who
    owned it before. Writes only the owner and bumps `version` (a board or
    page showing the old owner gets a ConflictError on its next change).
    Assigning the owner it already has changes nothing and notifies no one,
    so two managers making the same assignment at once give one outcome.
    The new owner is notified (the email after commit). Runs in a transaction."""
    from sla.services import notification_send

    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    permissions.require(
        permissions.can_assign_lead(actor, locked), "You cannot reassign this lead."
    )
    owner_id = owner.pk if owner is not None else None
    if locked.owner_id != owner_id:
        audit_record(
            actor=actor,
            action="lead.assign",
            obj=locked,
            changes={"owner": [locked.owner_id, owner_id]},
        )
        locked.owner = owner
        locked.version += 1
        locked.save(update_fields=["owner", "version", "updated_at"])
        if owner is not None and owner != actor:
            notification_send(
                recipient=owner,
                title=f"{actor.get_full_name() or actor} assigned you {locked}",
                body=f"{locked.title} at {locked.company}".strip(" at"),
                url=locked.get_absolute_url(),
            )
    _instance_refresh(lead, locked)
    return locked


@transaction.atomic
def activity_log(
    *,
    actor,
    kind: str,
    subject: str,
    body: str = "",
    lead: Lead | None = None,
    opportunity: Opportunity | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """Record a call, email, meeting or note. The first call, email or meeting
    on a lead is its first contact, which stops its response clock (only the
    first one counts: a conditional update)."""
    if lead is not None:
        permissions.require(permissions.can_work_lead(actor, lead), "You cannot work this lead.")
    if opportunity is not None:
        permissions.require(
            permissions.can_work_opportunity(actor, opportunity), "You cannot work this deal."
        )
    occurred_at = occurred_at or timezone.now()
    if occurred_at > timezone.now() + timedelta(minutes=5):
        raise TransitionError("An activity cannot be logged in the future.")
    account = (lead.account if lead else None) or (opportunity.account if opportunity else None)
    activity = Activity.objects.create(
        actor=actor,
        kind=kind,
        subject=subject,
        body=body,
        lead=lead,
        opportunity=opportunity,
        account=account,
        occurred_at=occurred_at,
    )
    if lead is not None and kind in Activity.CONTACT_KINDS:
        Lead.objects.filter(pk=lead.pk, first_contact_at__isnull=True).update(
            first_contact_at=occurred_at
        )
    return activity


@transaction.atomic
def touchpoint_record(
    *,
    lead: Lead,
    actor,
    type: str,
    occurred_at: datetime,
    channel: str = "",
    campaign: Campaign | None = None,
    asset=None,
    note: str = "",
) -> Touchpoint:
    """A touchpoint entered in Accord (e.g. a conversation at a trade show).
    After commit its lead is re-scored, as for the API and imports."""
    from leads.ingestion import touchpoints_recorded

    permissions.require(
        permissions.can_edit_lead(actor, lead), "You cannot record touchpoints on this lead."
    )
    if occurred_at > timezone.now() + timedelta(minutes=5):
        raise TransitionError("A touchpoint cannot be in the future.")
    touchpoint = Touchpoint.objects.create(
        lead=lead,
        type=type,
        occurred_at=occurred_at,
        channel=channel or (campaign.channel if campaign else ""),
        campaign=campaign,
        asset=asset,
        properties={"note": note, "recorded_by": actor.get_username()} if note else {},
        source=Touchpoint.Source.UI,
    )
    transaction.on_commit(lambda: touchpoints_recorded(frozenset({lead.pk})), robust=True)
    return touchpoint


@transaction.atomic
def lead_feedback_add(
    *, lead: Lead, actor, note: str, objections=(), competitor: Competitor | None = None
) -> LeadFeedback:
    """Objections heard and competitor intel, without changing the lead's stage."""
    permissions.require(permissions.can_work_lead(actor, lead), "You cannot work this lead.")
    if not (note or objections or competitor):
        raise TransitionError("Write a note, or pick an objection or a competitor.")
    return _feedback(
        lead=lead,
        author=actor,
        verdict=LeadFeedback.Verdict.NOTE,
        note=note,
        objections=objections,
        competitor=competitor,
    )


# --- Accounts and lead records -----------------------------------------------


def account_for_company(*, name: str, domain: str = "", defaults: dict | None = None) -> Account:
    """The account with this domain (or, with none, this name), created if missing.
    A public mail domain counts as none (no account may have one)."""
    domain = normalise_domain(domain)
    if domain in PUBLIC_MAIL_DOMAINS:
        domain = ""
    if domain:
        account = Account.objects.filter(domain=domain).first()
    else:
        account = Account.objects.filter(name__iexact=name.strip()).first()
    if account is None:
        fields = {k: v for k, v in (defaults or {}).items() if v not in (None, "")}
        account = Account(name=name.strip(), domain=domain, **fields)
        account.save()
    return account


def account_match(*, email: str = "", company_domain: str = "") -> Account | None:
    """The account a lead belongs to by its company domain, else its email's
    domain. Public mail domains such as gmail.com never match, even when given
    as the company domain (then the email's domain is used)."""
    domain = lead_company_domain(company_domain=company_domain, email=email)
    if not domain:
        return None
    return Account.objects.filter(domain=domain).first()


LEAD_DATA_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "phone",
    "company",
    "company_domain",
    "country",
    "region",
    "industry",
    "employees",
)


@dataclass
class LeadUpsert:
    lead: Lead
    created: bool
    changed: bool


@transaction.atomic
def lead_upsert(
    *,
    email: str,
    data: dict,
    channel: str = "",
    campaign: Campaign | None = None,
    actor=None,
    when: datetime | None = None,
) -> LeadUpsert:
    """Create a lead by email, or update the fields given for an existing one
    (a form fill). Blank values never erase what is known. The first channel
    and campaign seen become the lead's source. Matches the account by domain.
    A lead created by a person (`actor`) is written to the audit log."""
    email = email.strip().lower()
    when = when or timezone.now()
    lead = Lead.objects.select_for_update().filter(email=email).first()
    created = lead is None
    if created:
        lead = Lead(email=email, created_at=when, stage_changed_at=when)
    changed = created
    for field in LEAD_DATA_FIELDS:
        value = data.get(field)
        if field == "company_domain" and value:
            # Compared as stored, so "gmail.com" or "www.Acme.com" again is no change.
            value = lead_company_domain(company_domain=value, email="")
        if value in (None, ""):
            continue
        if getattr(lead, field) != value:
            setattr(lead, field, value)
            changed = True
    if not lead.source_channel and channel:
        lead.source_channel = channel
        changed = True
    if lead.source_campaign_id is None and campaign is not None:
        lead.source_campaign = campaign
        changed = True
    if lead.employees is not None:
        segment = Segment.for_employees(lead.employees)
        if segment != lead.segment:
            lead.segment = segment
            changed = True
    if lead.account_id is None:
        account = account_match(email=email, company_domain=data.get("company_domain") or "")
        if account is not None:
            lead.account = account
            changed = True
    if changed:
        lead.save()
    if created:
        LeadStageChange.objects.create(
            lead=lead, to_stage=LeadStage.NEW, actor=actor, note="Lead captured.", changed_at=when
        )
        if actor is not None:
            # A person adding a lead is audited; form fills and events from the
            # API (no actor) are recorded by the stage change above.
            audit_record(
                actor=actor,
                action="lead.create",
                obj=lead,
                changes={
                    field: [None, getattr(lead, field)]
                    for field in ("email", *LEAD_DATA_FIELDS, "source_channel")
                    if getattr(lead, field) not in (None, "")
                },
            )
    return LeadUpsert(lead=lead, created=created, changed=changed)


@transaction.atomic
def lead_update(*, lead: Lead, actor, data: dict) -> Lead:
    """Correct a lead's contact and company data (not its stage, owner or score).

    `lead` is the lead as the caller read it; a field counts as edited when
    `data` gives it a value other than the one read. Locks the row, applies
    only the edited fields to the row as it is now, and writes only what
    changed, so a stage change, reassignment or re-score committed since the
    caller read the lead is kept, and so is another user's edit of other
    fields. Bumps `version` when anything changed (a board or page holding
    the old version gets a ConflictError on its next change). The caller's
    instance is refreshed to the row as saved. Runs in a transaction."""
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    permissions.require(permissions.can_edit_lead(actor, locked), "You cannot edit this lead.")
    edited = {}
    for field in LEAD_DATA_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if value is None and field != "employees":
            value = ""
        if value != getattr(lead, field):
            edited[field] = value
    before = {field: getattr(locked, field) for field in edited}
    for field, value in edited.items():
        setattr(locked, field, value)
    changed = [field for field in edited if before[field] != getattr(locked, field)]
    if "employees" in changed:
        segment = Segment.for_employees(locked.employees)
        if segment != locked.segment:
            locked.segment = segment
            changed.append("segment")
    if locked.account_id is None:
        account = account_match(email=locked.email, company_domain=locked.company_domain)
        if account is not None:
            locked.account = account
            changed.append("account")
    if changed:
        locked.version += 1
        locked.save(update_fields=[*changed, "version", "updated_at"])
        edits = {
            field: [before[field], getattr(locked, field)] for field in changed if field in before
        }
        if edits:
            audit_record(actor=actor, action="lead.edit", obj=locked, changes=edits)
    _instance_refresh(lead, locked)
    return locked


# --- Opportunities -------------------------------------------------------------


@transaction.atomic
def opportunity_move(
    *,
    opportunity: Opportunity,
    actor,
    to_stage: str,
    expected_version: int | None = None,
    amount: Decimal | None = None,
    closed_on: date | None = None,
    loss_reason: FeedbackReason | None = None,
    loss_note: str = "",
    competitor: Competitor | None = None,
    note: str = "",
) -> Opportunity:
    """Move a deal to another stage. Open stages move freely among themselves;
    won needs the final amount and close date; lost needs a reason (a
    competitor is optional). Closed deals do not move. When a deal from a lead
    is won, the lead becomes a customer."""
    permissions.require(
        permissions.can_work_opportunity(actor, opportunity), "You cannot move this deal."
    )
    locked = Opportunity.objects.select_for_update().get(pk=opportunity.pk)
    if expected_version is not None and locked.version != expected_version:
        raise ConflictError(
            f"{locked} was changed by someone else (it is now in "
            f"{locked.get_stage_display()}). Your move was not applied.",
            current=locked,
        )
    if to_stage not in OpportunityStage.values:
        raise TransitionError(f"“{to_stage}” is not a deal stage.")
    if locked.stage == to_stage:
        raise TransitionError(f"{locked} is already in {locked.get_stage_display()}.")
    if not locked.is_open:
        raise TransitionError(
            f"{locked} is closed ({locked.get_stage_display()}); closed deals do not move."
        )
    when = timezone.now()
    updates = {"stage": to_stage, "stage_changed_at": when}
    if to_stage == OpportunityStage.WON:
        if amount is None or amount <= 0 or closed_on is None:
            raise TransitionError("A won deal needs its final amount and close date.")
        updates.update(amount=amount, closed_on=closed_on)
    elif to_stage == OpportunityStage.LOST:
        _check_reason(loss_reason, FeedbackReason.AppliesTo.LOSS)
        updates.update(
            loss_reason=loss_reason,
            loss_note=loss_note,
            competitor=competitor,
            closed_on=closed_on or timezone.localdate(),
        )
    OpportunityStageChange.objects.create(
        opportunity=locked,
        from_stage=locked.stage,
        to_stage=to_stage,
        actor=actor,
        note=note or loss_note,
        changed_at=when,
    )
    audit_record(
        actor=actor,
        action="opportunity.move",
        obj=locked,
        changes={"stage": [locked.stage, to_stage]}
        | ({"amount": [str(locked.amount), str(amount)]} if amount is not None else {})
        | ({"loss_reason": loss_reason.code} if loss_reason else {}),
    )
    for field, value in updates.items():
        setattr(locked, field, value)
    locked.version += 1
    locked.save(update_fields=[*updates, "version", "updated_at"])
    if to_stage == OpportunityStage.WON and locked.source_lead_id:
        source = Lead.objects.get(pk=locked.source_lead_id)
        if source.stage == LeadStage.OPPORTUNITY:
            _lead_transition(
                lead=source, name="win", actor=actor, note=f"Deal {locked} won.", when=when
            )
    opportunity.__dict__.update({k: getattr(locked, k) for k in [*updates, "version"]})
    return locked
