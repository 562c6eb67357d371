"""Reads of the shared record, each with the joins its page needs."""

import heapq
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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
    sla_version=None,
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
    if sla_version is not None:
        leads = leads.filter(sla_version=sla_version)
    return leads


def lead_list_page(
    leads: QuerySet, *, sort: str, after: str = "", before: str = "", size: int = LEAD_PAGE_SIZE
) -> KeysetPage:
    """One page of leads for the list: 1 query for the rows (with owner,
    account, campaign and the SLA version they qualified under), whatever the
    page."""
    _, keys, descending = LEAD_SORTS.get(sort, LEAD_SORTS["newest"])
    rows = leads.select_related("owner", "account", "source_campaign", "sla_version")
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
        leads.select_related("owner", "account", "source_campaign", "sla_version")
        .order_by(*order)
        .iterator(chunk_size=2000)
    )


# --- The lead page ---------------------------------------------------------------


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # touchpoint | activity | stage | feedback
    item: object

    @property
    def sort_key(self) -> tuple[datetime, str, int]:
        return (self.at, self.kind, self.item.pk)


@dataclass(frozen=True)
class TimelineCursor:
    """Where a timeline page ended: its last entry's (time, kind, id). The
    timeline is ordered newest first by that whole key, so entries that share
    a moment (a rejection writes three) page without being skipped or repeated."""

    at: datetime
    kind: str = ""
    id: int = 0

    @property
    def token(self) -> str:
        return f"{self.at.isoformat()}~{self.kind}~{self.id}"

    @classmethod
    def parse(cls, token: str) -> "TimelineCursor | None":
        """The cursor in `token`, or None when it is not one. A bare ISO time
        (an older link) means "everything before that moment"."""
        at_text, _, rest = (token or "").partition("~")
        try:
            at = parse_datetime(at_text.strip())
        except ValueError:
            return None
        if at is None:
            return None
        if timezone.is_naive(at):
            at = timezone.make_aware(at)
        if not rest:
            return cls(at)
        kind, _, pk = rest.partition("~")
        if kind not in TIMELINE_KINDS or not pk.isdigit():
            return None
        return cls(at, kind, int(pk))

    def older(self, queryset: QuerySet, *, kind: str, time_field: str) -> QuerySet:
        """The rows of one kind's stream that come after this cursor."""
        if kind < self.kind:  # earlier in the order at the same moment: ties stay
            return queryset.filter(**{f"{time_field}__lte": self.at})
        if kind == self.kind:
            return queryset.filter(
                Q(**{f"{time_field}__lt": self.at}) | Q(**{time_field: self.at, "pk__lt": self.id})
            )
        return queryset.filter(**{f"{time_field}__lt": self.at})


TIMELINE_SIZE = 60
TIMELINE_KINDS = ("activity", "feedback", "stage", "touchpoint")


def lead_timeline(lead: Lead, *, before: TimelineCursor | None = None, size: int = TIMELINE_SIZE):
    """Everything that happened to a lead, newest first: touchpoints (with
    campaign and asset), sales activities, stage changes (who, why) and
    feedback (reason, objections, competitor). Four queries plus one for the
    feedback's objections, whatever the history's length; returns
    (entries, older_than) where older_than is the TimelineCursor of the next
    page back (None on the last page)."""
    streams = {
        "touchpoint": (
            Touchpoint.objects.filter(lead=lead).select_related("campaign", "asset"),
            "occurred_at",
        ),
        "activity": (Activity.objects.filter(lead=lead).select_related("actor"), "occurred_at"),
        "stage": (
            LeadStageChange.objects.filter(lead=lead).select_related("actor", "reason"),
            "changed_at",
        ),
        "feedback": (
            LeadFeedback.objects.filter(lead=lead)
            .select_related("author", "reason", "competitor")
            .prefetch_related("objections"),
            "created_at",
        ),
    }
    pages = []
    for kind, (rows, time_field) in streams.items():
        if before is not None:
            rows = before.older(rows, kind=kind, time_field=time_field)
        rows = rows.order_by(f"-{time_field}", "-pk")[: size + 1]
        pages.append([TimelineEntry(getattr(row, time_field), kind, row) for row in rows])
    merged = list(heapq.merge(*pages, key=lambda entry: entry.sort_key, reverse=True))
    entries = merged[:size]
    older_than = None
    if len(merged) > size:
        last = entries[-1]
        older_than = TimelineCursor(last.at, last.kind, last.item.pk)
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


ACCOUNT_SECTION_SIZE = 25


@dataclass
class AccountSection:
    """One list on the account page: a keyset page of it and its true count."""

    name: str
    page: KeysetPage
    count: int


def _account_section_rows(account: Account, name: str) -> tuple[QuerySet, tuple[str, ...]]:
    """The rows of one account-page section and the keys it pages by (newest first)."""
    if name == "open":
        rows = account.opportunities.filter(stage__in=OpportunityStage.open_stages())
        return rows.select_related("owner"), ("created_at", "id")
    if name == "closed":
        rows = account.opportunities.filter(stage__in=OpportunityStage.closed_stages())
        return rows.select_related("loss_reason"), ("closed_on", "id")
    if name == "touchpoints":
        rows = Touchpoint.objects.filter(lead__account=account)
        return rows.select_related("lead", "campaign", "asset"), ("occurred_at", "id")
    if name == "activities":
        rows = Activity.objects.filter(account=account).select_related("actor", "lead")
        return rows, ("occurred_at", "id")
    raise ValueError(f"unknown account section {name!r}")


ACCOUNT_SECTIONS = ("open", "closed", "touchpoints", "activities")


def account_section_counts(account: Account) -> dict[str, int]:
    """True counts of the account's people, open and closed deals, touchpoints
    and activities: four queries (the deals are one aggregate), whatever the
    account's size."""
    deals = account.opportunities.aggregate(
        open=Count("pk", filter=Q(stage__in=OpportunityStage.open_stages())),
        closed=Count("pk", filter=Q(stage__in=OpportunityStage.closed_stages())),
    )
    return {
        "people": account.leads.count(),
        "open": deals["open"],
        "closed": deals["closed"],
        "touchpoints": Touchpoint.objects.filter(lead__account=account).count(),
        "activities": Activity.objects.filter(account=account).count(),
    }


def account_section(
    account: Account, name: str, *, count: int, after: str = "", before: str = ""
) -> AccountSection:
    """A page of one section (`ACCOUNT_SECTIONS`), by keyset: one query."""
    rows, keys = _account_section_rows(account, name)
    page = keyset_page(
        rows, keys=keys, descending=True, size=ACCOUNT_SECTION_SIZE, after=after, before=before
    )
    return AccountSection(name, page, count)


def account_overview(account: Account, *, paged: dict[str, dict] | None = None) -> dict:
    """Everything the account page shows, in a fixed number of queries: the
    true counts, the first page of each section (or the page `paged[name]`
    asks for, as {"after": cursor} or {"before": cursor}), the first people
    (all of them are the lead list filtered by account) and look-alike
    accounts."""
    paged = paged or {}
    counts = account_section_counts(account)
    return {
        "counts": counts,
        "sections": {
            name: account_section(account, name, count=counts[name], **paged.get(name, {}))
            for name in ACCOUNT_SECTIONS
        },
        "people": list(
            account.leads.order_by("last_name", "first_name", "id")[:ACCOUNT_SECTION_SIZE]
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
VERDICTS_WITH_REASON = (LeadFeedback.Verdict.REJECTED, LeadFeedback.Verdict.DISQUALIFIED)


def feedback_in_period(start: date, end: date, *, prefix: str = "") -> Q:
    """Feedback given from `start` to `end` (inclusive, in the current time
    zone), as a range on created_at so its index serves it. `prefix` reaches
    the feedback through a relation ("feedback__")."""
    first = timezone.make_aware(datetime.combine(start, time.min))
    after_last = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    return Q(**{f"{prefix}created_at__gte": first, f"{prefix}created_at__lt": after_last})


def feedback_counted(group_by: str) -> Q:
    """The feedback the summary counts: rejections and disqualifications; by
    competitor, also plain notes that name one (intel given without a verdict)."""
    condition = Q(verdict__in=VERDICTS_WITH_REASON)
    if group_by == "competitor":
        condition |= Q(competitor__isnull=False)
    return condition


def feedback_summary(*, start: date, end: date, group_by: str):
    """Rejections and disqualifications between two dates (inclusive), counted
    by the chosen dimension (by competitor, with the notes naming one); one
    GROUP BY query."""
    _, field = FEEDBACK_GROUPS[group_by]
    rows = (
        LeadFeedback.objects.filter(feedback_in_period(start, end), feedback_counted(group_by))
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
            feedback_in_period(start, end), verdict__in=VERDICTS_WITH_REASON
        )
        .values(field, "reason__label")
        .annotate(total=Count("id"))
        .order_by(field, "-total")
    )
    return [
        {"key": _group_label(group_by, r[field]), "reason": r["reason__label"], "total": r["total"]}
        for r in rows
    ]


def feedback_intel_by_dimension(*, start: date, end: date, group_by: str) -> list[dict]:
    """Objections heard and competitors named between two dates, per value of
    the dimension (campaign, channel, reason or competitor), from every kind
    of feedback: rejections, disqualifications and plain notes. Two GROUP BY
    queries (one when grouping by competitor, which needs no competitor
    column). Rows: {key, objections: [(label, n)], competitors: [(name, n)],
    total}, busiest first."""
    _, field = FEEDBACK_GROUPS[group_by]
    period = LeadFeedback.objects.filter(feedback_in_period(start, end))
    by_key: dict = {}
    tallies = [("objections", "objections__label")]
    if group_by != "competitor":
        tallies.append(("competitors", "competitor__name"))
    for column, label_field in tallies:
        counted = (
            period.filter(**{f"{label_field}__isnull": False})
            .values(field, label_field)
            .annotate(total=Count("id"))
            .order_by("-total", label_field)
        )
        for tally in counted:
            value = tally[field]
            if value not in by_key:
                by_key[value] = {
                    "key": _group_label(group_by, value),
                    "objections": [],
                    "competitors": [],
                    "total": 0,
                }
            row = by_key[value]
            row[column].append((tally[label_field], tally["total"]))
            row["total"] += tally["total"]
    return sorted(by_key.values(), key=lambda row: (-row["total"], str(row["key"] or "")))


def _group_label(group_by: str, value):
    if group_by == "channel" and value:
        return Channel(value).label
    return value


def objections_summary(*, start: date, end: date):
    """Objections heard in feedback between two dates, most frequent first."""
    from leads.models import Objection

    return list(
        Objection.objects.filter(feedback_in_period(start, end, prefix="feedback__"))
        .annotate(total=Count("feedback"))
        .order_by("-total", "label")
    )


def feedback_recent(*, start: date, end: date, limit: int = 50):
    return list(
        LeadFeedback.objects.filter(feedback_in_period(start, end))
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
