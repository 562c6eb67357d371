"""Reads for the pipeline boards: which records each board holds, a page of
one column, and every column's count, amount and change stamp.

Both boards order a column by when its cards arrived there, newest first
(`stage_changed_at`, then id), so a card that was just moved sits at the top
of its new column, and a column pages by keyset like the lead list.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from config.keyset import KeysetPage, keyset_page
from leads.models import Lead, LeadStage, Opportunity, OpportunityStage, TeamMembership

COLUMN_PAGE_SIZE = 50
COLUMN_KEYS = ("stage_changed_at", "id")
# The deal board shows deals closed recently, not every deal ever closed.
CLOSED_WINDOW_DAYS = 90


# What a card shows (leads.board_display), read as plain rows: building 300
# model instances with their owner and account cost more than the queries.
OWNER_FIELDS = ("owner_id", "owner__first_name", "owner__last_name", "owner__username")
LEAD_CARD_FIELDS = (
    "id", "stage", "stage_changed_at", "version", "first_name", "last_name", "email",
    "company", "company_domain", "score", "source_channel", "response_due_at",
    "first_contact_at", "response_breached_at", *OWNER_FIELDS,
)  # fmt: skip
DEAL_CARD_FIELDS = (
    "id", "stage", "stage_changed_at", "version", "name", "account_id", "account__name",
    "amount", "expected_close_on", "closed_on", "is_marketing_sourced", *OWNER_FIELDS,
)  # fmt: skip


@dataclass(frozen=True)
class Column:
    stage: str
    label: str
    hint: str


HANDOFF_COLUMNS = (
    Column(LeadStage.MQL, "MQL", "Waiting for a rep"),
    Column(LeadStage.SAL, "SAL", "Accepted: being worked"),
    Column(LeadStage.SQL, "SQL", "Qualified: ready to convert"),
    Column(LeadStage.RECYCLED, "Recycled", "Back with marketing for nurture"),
)
HANDOFF_STAGES = tuple(column.stage for column in HANDOFF_COLUMNS)

DEAL_COLUMNS = (
    Column(OpportunityStage.DISCOVERY, "Discovery", "Finding the need"),
    Column(OpportunityStage.DEMO, "Demo", "Showing the product"),
    Column(OpportunityStage.PROPOSAL, "Proposal", "Offer sent"),
    Column(OpportunityStage.NEGOTIATION, "Negotiation", "Agreeing terms"),
    Column(OpportunityStage.WON, "Won", f"Closed in the last {CLOSED_WINDOW_DAYS} days"),
    Column(OpportunityStage.LOST, "Lost", f"Closed in the last {CLOSED_WINDOW_DAYS} days"),
)
DEAL_STAGES = tuple(column.stage for column in DEAL_COLUMNS)


@dataclass
class ColumnSummary:
    count: int = 0
    amount: Decimal = Decimal(0)
    stamp: str = "0"


def _owner_q(*, owner=None, owners=None, unassigned=False, team=None) -> Q:
    condition = Q()
    if unassigned:
        condition &= Q(owner__isnull=True)
    elif owner is not None:
        condition &= Q(owner=owner)
    elif owners is not None:
        condition &= Q(owner_id__in=owners)
    if team is not None:
        # The ids as literals (one small query): the planner then reads the
        # (owner, stage) index instead of scanning whole columns for a join.
        members = list(TeamMembership.objects.filter(team=team).values_list("user_id", flat=True))
        condition &= Q(owner_id__in=members)
    return condition


def handoff_leads(
    *,
    stages=HANDOFF_STAGES,
    owner=None,
    owners=None,
    unassigned=False,
    team=None,
    channels=(),
    segments=(),
) -> QuerySet:
    """Leads on the handoff board (MQL, SAL, SQL, recycled), or in its columns
    `stages`, matching the filters."""
    leads = Lead.objects.filter(stage__in=stages).filter(
        _owner_q(owner=owner, owners=owners, unassigned=unassigned, team=team)
    )
    if channels:
        leads = leads.filter(source_channel__in=channels)
    if segments:
        leads = leads.filter(segment__in=segments)
    return leads


def board_deals(
    *,
    stages=DEAL_STAGES,
    owner=None,
    owners=None,
    unassigned=False,
    team=None,
    channels=(),
    segments=(),
    amount_min: Decimal | None = None,
    amount_max: Decimal | None = None,
    today: date | None = None,
) -> QuerySet:
    """Deals on the deal board, or in its columns `stages`: every open deal,
    and those closed in the last CLOSED_WINDOW_DAYS days, matching the filters
    (segment is the account's)."""
    since = (today or timezone.localdate()) - timedelta(days=CLOSED_WINDOW_DAYS)
    open_stages = [stage for stage in stages if stage in OpportunityStage.open_stages()]
    closed_stages = [stage for stage in stages if stage in OpportunityStage.closed_stages()]
    deals = Opportunity.objects.filter(
        Q(stage__in=open_stages) | Q(stage__in=closed_stages, closed_on__gte=since)
    ).filter(_owner_q(owner=owner, owners=owners, unassigned=unassigned, team=team))
    if channels:
        deals = deals.filter(source_channel__in=channels)
    if segments:
        deals = deals.filter(account__segment__in=segments)
    if amount_min is not None:
        deals = deals.filter(amount__gte=amount_min)
    if amount_max is not None:
        deals = deals.filter(amount__lte=amount_max)
    return deals


def column_summaries(records: QuerySet, columns) -> dict[str, ColumnSummary]:
    """Count, amount (deals) and change stamp of each of `columns` (a column
    fragment's `records` hold that column's cards only): one GROUP BY query.

    The stamp changes when a card leaves a column (the count drops) or enters
    it (the newest arrival time changes), which is what the board's refresh
    compares."""
    aggregates = {"count": Count("id"), "latest": Max("stage_changed_at")}
    if records.model is Opportunity:
        aggregates["amount"] = Sum("amount")
    rows = records.order_by().values("stage").annotate(**aggregates)
    summaries = {column.stage: ColumnSummary() for column in columns}
    for row in rows:
        if row["stage"] not in summaries:
            continue
        latest = row["latest"].timestamp() if row["latest"] else 0
        summaries[row["stage"]] = ColumnSummary(
            count=row["count"],
            amount=row.get("amount") or Decimal(0),
            stamp=f"{row['count']}-{latest:.6f}",
        )
    return summaries


def column_page(records: QuerySet, stage: str, *, after: str = "") -> KeysetPage:
    """One page of a column's cards, newest arrivals first: one query with the
    joins a card shows. The items are rows (named tuples of LEAD_CARD_FIELDS or
    DEAL_CARD_FIELDS) for `leads.board_display`, not model instances."""
    fields = DEAL_CARD_FIELDS if records.model is Opportunity else LEAD_CARD_FIELDS
    return keyset_page(
        records.filter(stage=stage).values_list(*fields, named=True),
        keys=COLUMN_KEYS,
        descending=True,
        size=COLUMN_PAGE_SIZE,
        after=after,
    )
