"""Reads of the shared record, each with the joins its page needs."""

import heapq
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from config.keyset import KeysetPage, count_capped, keyset_page
from leads.models import (
    Account,
    Activity,
    Channel,
    Lead,
    LeadFeedback,
    LeadStageChange,
    Opportunity,
    OpportunityStage,
    Touchpoint,
)

LEAD_PAGE_SIZE = 50
LEAD_COUNT_CAP = 10_000

# sort name -> (label, keyset keys, descending)
LEAD_SORTS = {
    "newest": ("Newest first", ("created_at", "id"), True),
    "oldest": ("Oldest first", ("created_at", "id"), False),
    "score": ("Highest score", ("score", "id"), True),
    "name": ("Name (A–Z)", ("last_name", "first_name", "id"), False),
    "changed": ("Stage changed recently", ("stage_changed_at", "id"), True),
}


class SlaStatus:
    """Where a lead stands against its response clock."""

    NONE = "none"
    WAITING = "waiting"
    OVERDUE = "overdue"
    MET = "met"
    LATE = "late"

    CHOICES = [
        (WAITING, "Waiting for first contact"),
        (OVERDUE, "Overdue or breached"),
        (MET, "Contacted within the SLA"),
        (LATE, "Contacted late"),
        (NONE, "No response clock"),
    ]

    @classmethod
    def q(cls, status: str, now: datetime) -> Q:
        open_clock = Q(response_due_at__isnull=False, first_contact_at__isnull=True)
        return {
            cls.NONE: Q(response_due_at__isnull=True),
            cls.WAITING: open_clock & Q(response_due_at__gt=now, response_breached_at__isnull=True),
            cls.OVERDUE: open_clock
            & (Q(response_due_at__lte=now) | Q(response_breached_at__isnull=False)),
            cls.MET: Q(
                response_due_at__isnull=False,
                first_contact_at__isnull=False,
                first_contact_at__lte=F("response_due_at"),
            ),
            cls.LATE: Q(
                response_due_at__isnull=False,
                first_contact_at__isnull=False,
                first_contact_at__gt=F("response_due_at"),
            ),
        }[status]

    @classmethod
    def of(cls, lead: Lead, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if lead.response_due_at is None:
            return cls.NONE
        if lead.first_contact_at is not None:
            return cls.MET if lead.first_contact_at <= lead.response_due_at else cls.LATE
        if lead.response_breached_at is not None or lead.response_due_at <= now:
            return cls.OVERDUE
        return cls.WAITING


def lead_search_q(q: str) -> tuple[dict, Q]:
    """Aliases and a condition for "starts with" search on name, email and
    company; each side uses a lower(...) text_pattern_ops index."""
    terms = q.strip().lower().split()
    aliases = {
        "first_lower": Lower("first_name"),
        "last_lower": Lower("last_name"),
        "company_lower": Lower("company"),
    }
    if not terms:
        return {}, Q()
    whole = " ".join(terms)
    condition = (
        Q(last_lower__startswith=whole)
        | Q(first_lower__startswith=whole)
        | Q(company_lower__startswith=whole)
        | Q(email__startswith=whole)
    )
    if len(terms) >= 2:
        condition |= Q(first_lower__startswith=terms[0], last_lower__startswith=" ".join(terms[1:]))
    return aliases, condition


def leads_filtered(
    *,
    q: str = "",
    stages=(),
    owner=None,
    owners=None,
    unassigned: bool = False,
    channels=(),
    campaign=None,
    score_min: int | None = None,
    score_max: int | None = None,
    sla_status: str = "",
    segments=(),
    account=None,
) -> QuerySet:
    leads = Lead.objects.all()
    if q:
        aliases, condition = lead_search_q(q)
        leads = leads.alias(**aliases).filter(condition)
    if stages:
        leads = leads.filter(stage__in=stages)
    if unassigned:
        leads = leads.filter(owner__isnull=True)
    elif owner is not None:
        leads = leads.filter(owner=owner)
    elif owners is not None:
        leads = leads.filter(owner_id__in=owners)
    if channels:
        leads = leads.filter(source_channel__in=channels)
    if campaign is not None:
        leads = leads.filter(source_campaign=campaign)
    if score_min is not None:
        leads = leads.filter(score__gte=score_min)
    if score_max is not None:
        leads = leads.filter(score__lte=score_max)
    if sla_status:
        leads = leads.filter(SlaStatus.q(sla_status, timezone.now()))
    if segments:
        leads = leads.filter(segment__in=segments)
    if account is not None:
        leads = leads.filter(account=account)
    return leads


def lead_list_page(
    leads: QuerySet, *, sort: str, after: str = "", before: str = "", size: int = LEAD_PAGE_SIZE
) -> KeysetPage:
    """One page of leads for the list: 1 query for the rows (with owner,
    account and campaign), whatever the page."""
    _, keys, descending = LEAD_SORTS.get(sort, LEAD_SORTS["newest"])
    rows = leads.select_related("owner", "account", "source_campaign")
    return keyset_page(
        rows, keys=keys, descending=descending, size=size, after=after, before=before
    )


def leads_count(leads: QuerySet) -> tuple[int, bool]:
    """A bounded count for the list header ("10,000+ leads")."""
    return count_capped(leads, LEAD_COUNT_CAP)


def leads_for_export(leads: QuerySet, *, sort: str):
    _, keys, descending = LEAD_SORTS.get(sort, LEAD_SORTS["newest"])
    order = [f"-{k}" if descending else k for k in keys]
    return (
        leads.select_related("owner", "account", "source_campaign")
        .order_by(*order)
        .iterator(chunk_size=2000)
    )


# --- The lead page ---------------------------------------------------------------


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # touchpoint | activity | stage | feedback
    item: object


TIMELINE_SIZE = 60


def lead_timeline(lead: Lead, *, before: datetime | None = None, size: int = TIMELINE_SIZE):
    """Everything that happened to a lead, newest first: touchpoints (with
    campaign and asset), sales activities, stage changes (who, why) and
    feedback (reason, objections, competitor). Four queries plus one for the
    feedback's objections, whatever the history's length; returns
    (entries, older_than) where older_than pages further back."""
    touchpoints = Touchpoint.objects.filter(lead=lead).select_related("campaign", "asset")
    activities = Activity.objects.filter(lead=lead).select_related("actor")
    changes = LeadStageChange.objects.filter(lead=lead).select_related("actor", "reason")
    feedback = (
        LeadFeedback.objects.filter(lead=lead)
        .select_related("author", "reason", "competitor")
        .prefetch_related("objections")
    )
    if before is not None:
        touchpoints = touchpoints.filter(occurred_at__lt=before)
        activities = activities.filter(occurred_at__lt=before)
        changes = changes.filter(changed_at__lt=before)
        feedback = feedback.filter(created_at__lt=before)
    streams = [
        (TimelineEntry(t.occurred_at, "touchpoint", t) for t in touchpoints[: size + 1]),
        (TimelineEntry(a.occurred_at, "activity", a) for a in activities[: size + 1]),
        (TimelineEntry(c.changed_at, "stage", c) for c in changes[: size + 1]),
        (TimelineEntry(f.created_at, "feedback", f) for f in feedback[: size + 1]),
    ]
    merged = list(heapq.merge(*streams, key=lambda entry: entry.at, reverse=True))
    entries = merged[:size]
    older_than = entries[-1].at if len(merged) > size else None
    return entries, older_than


def lead_duplicates(lead: Lead, limit: int = 5) -> list[Lead]:
    """Leads that look like the same person: the same name at the same company
    (domain, else name), or the same mailbox name where one of the two
    addresses is at a public mail provider (jane.doe@gmail.com and
    jane.doe@acme.com)."""
    from leads.models import PUBLIC_MAIL_DOMAINS

    local_part, _, domain = lead.email.partition("@")
    condition = Q(pk__in=[])
    if lead.first_name and lead.last_name and (lead.company_domain or lead.company):
        same_company = (
            Q(company_domain=lead.company_domain)
            if lead.company_domain
            else Q(company__iexact=lead.company)
        )
        condition |= (
            Q(first_name__iexact=lead.first_name, last_name__iexact=lead.last_name) & same_company
        )
    if local_part and domain:
        same_mailbox = Q(email__startswith=f"{local_part}@") & ~Q(email__endswith=f"@{domain}")
        if domain in PUBLIC_MAIL_DOMAINS:
            condition |= same_mailbox
        else:
            public = Q()
            for public_domain in PUBLIC_MAIL_DOMAINS:
                public |= Q(email=f"{local_part}@{public_domain}")
            condition |= public
    return list(Lead.objects.filter(condition).exclude(pk=lead.pk).order_by("-created_at")[:limit])


def lead_duplicates_for_new(*, email: str, first_name: str, last_name: str, company: str):
    """Existing leads a new lead with these details would duplicate."""
    email = email.strip().lower()
    condition = Q(email=email) if email else Q(pk__in=[])
    if first_name and last_name and company:
        condition |= Q(
            first_name__iexact=first_name.strip(),
            last_name__iexact=last_name.strip(),
            company__iexact=company.strip(),
        )
    return list(Lead.objects.filter(condition).select_related("owner")[:5])


def accounts_like(*, name: str, domain: str = "", exclude_pk=None, limit: int = 5):
    """Accounts that look like this company: the same domain, or a name that
    matches once case, punctuation and suffixes (Inc, Corp, ...) are ignored."""
    from leads.models import company_name_key, normalise_domain

    key = company_name_key(name)
    condition = Q(name_key=key) if key else Q(pk__in=[])
    domain = normalise_domain(domain)
    if domain:
        condition |= Q(domain=domain)
    accounts = Account.objects.filter(condition)
    if exclude_pk:
        accounts = accounts.exclude(pk=exclude_pk)
    return list(accounts[:limit])


# --- Accounts ----------------------------------------------------------------------

ACCOUNT_PAGE_SIZE = 50


def accounts_filtered(*, q: str = "", segments=(), industry: str = "") -> QuerySet:
    accounts = Account.objects.all()
    if q:
        accounts = accounts.alias(name_lower=Lower("name")).filter(
            Q(name_lower__startswith=q.strip().lower()) | Q(domain__startswith=q.strip().lower())
        )
    if segments:
        accounts = accounts.filter(segment__in=segments)
    if industry:
        accounts = accounts.filter(industry__iexact=industry)
    return accounts


def account_list_page(accounts: QuerySet, *, after="", before="") -> KeysetPage:
    """A page of accounts ordered by name, with lead and open-deal counts (one
    query: the counts are correlated subqueries over indexed foreign keys)."""
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Coalesce

    lead_counts = (
        Lead.objects.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    open_deals = (
        Opportunity.objects.filter(account=OuterRef("pk"), stage__in=OpportunityStage.open_stages())
        .order_by()
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = accounts.annotate(
        lead_count=Coalesce(Subquery(lead_counts), 0),
        open_deal_count=Coalesce(Subquery(open_deals), 0),
    )
    return keyset_page(
        rows, keys=("name", "id"), descending=False, size=ACCOUNT_PAGE_SIZE, after=after,
        before=before,
    )  # fmt: skip


def account_overview(account: Account) -> dict:
    """Everything the account page shows, in a fixed number of queries."""
    opportunities = list(
        account.opportunities.select_related("owner", "product", "source_lead").order_by(
            "-created_at"
        )[:200]
    )
    return {
        "people": list(account.leads.select_related("owner").order_by("last_name")[:200]),
        "open_opportunities": [o for o in opportunities if o.is_open],
        "closed_opportunities": [o for o in opportunities if not o.is_open],
        "touchpoints": list(
            Touchpoint.objects.filter(lead__account=account)
            .select_related("lead", "campaign", "asset")
            .order_by("-occurred_at")[:50]
        ),
        "activities": list(
            Activity.objects.filter(account=account)
            .select_related("actor", "lead")
            .order_by("-occurred_at")[:50]
        ),
        "lookalikes": accounts_like(
            name=account.name, domain=account.domain, exclude_pk=account.pk
        ),
    }


# --- Marketing's feedback view ----------------------------------------------------------

FEEDBACK_GROUPS = {
    "reason": ("Reason", "reason__label"),
    "campaign": ("Campaign", "campaign__name"),
    "channel": ("Channel", "channel"),
    "competitor": ("Competitor", "competitor__name"),
}


def feedback_summary(
    *, start: date, end: date, group_by: str, verdicts=("rejected", "disqualified")
):
    """Rejections and disqualifications between two dates (inclusive), counted
    by the chosen dimension; one GROUP BY query."""
    _, field = FEEDBACK_GROUPS[group_by]
    rows = (
        LeadFeedback.objects.filter(
            created_at__date__gte=start, created_at__date__lte=end, verdict__in=verdicts
        )
        .values(field)
        .annotate(total=Count("id"))
        .order_by("-total", field)
    )
    return [{"key": _group_label(group_by, row[field]), "total": row["total"]} for row in rows]


def feedback_by_reason_and_dimension(*, start: date, end: date, group_by: str):
    """A cross-tab: for each value of the dimension, how many rejections and
    disqualifications per reason; one GROUP BY query."""
    _, field = FEEDBACK_GROUPS[group_by]
    rows = (
        LeadFeedback.objects.filter(
            created_at__date__gte=start,
            created_at__date__lte=end,
            verdict__in=("rejected", "disqualified"),
        )
        .values(field, "reason__label")
        .annotate(total=Count("id"))
        .order_by(field, "-total")
    )
    return [
        {"key": _group_label(group_by, r[field]), "reason": r["reason__label"], "total": r["total"]}
        for r in rows
    ]


def _group_label(group_by: str, value):
    if group_by == "channel" and value:
        return Channel(value).label
    return value


def objections_summary(*, start: date, end: date):
    """Objections heard in feedback between two dates, most frequent first."""
    from leads.models import Objection

    return list(
        Objection.objects.filter(
            feedback__created_at__date__gte=start, feedback__created_at__date__lte=end
        )
        .annotate(total=Count("feedback"))
        .order_by("-total", "label")
    )


def feedback_recent(*, start: date, end: date, limit: int = 50):
    return list(
        LeadFeedback.objects.filter(created_at__date__gte=start, created_at__date__lte=end)
        .exclude(verdict="accepted")
        .select_related("lead", "author", "reason", "competitor", "campaign")
        .prefetch_related("objections")
        .order_by("-created_at")[:limit]
    )


def opportunity_story(opportunity: Opportunity) -> dict:
    """A deal's history and the story of the lead it came from."""
    from leads.models import OpportunityStageChange

    lead = opportunity.source_lead
    story = {
        "stage_changes": list(
            OpportunityStageChange.objects.filter(opportunity=opportunity)
            .select_related("actor")
            .order_by("-changed_at", "-id")
        ),
        "activities": list(
            Activity.objects.filter(opportunity=opportunity)
            .select_related("actor")
            .order_by("-occurred_at")[:100]
        ),
        "lead_timeline": [],
    }
    if lead is not None:
        story["lead_timeline"], story["lead_older_than"] = lead_timeline(lead)
    return story
