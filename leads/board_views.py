"""The pipeline boards: the handoff board (leads between marketing and sales)
and the deal board (opportunities by stage).

One URL per board. A plain GET is the page; an htmx GET gets the board (after
a filter change), one column's next cards (`?column=demo&after=…`), or, with
`?sync=1` and the stamps the page holds, only the columns someone else
changed since. Each card posts its moves to the record's move URL, which
calls the same services the lead and deal pages use and answers htmx with
the affected columns as out-of-band swaps (the card back where it is, for a
refused or conflicting move) and a message; a plain post redirects back.
Moves that need details (a reason for rejecting a lead or losing a deal; the
final amount and date of a won deal) answer with a form first, in a dialog
with htmx, as a page without JavaScript.
"""

from urllib.parse import urlsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from config import roles
from config.http import is_fragment, safe_next_url
from leads import board_display, board_moves, board_selectors, permissions, services
from leads.board_forms import (
    BoardFilterForm,
    DealBoardFilterForm,
    DealLostForm,
    DealWonForm,
    valid_filter_form,
)
from leads.forms import LeadRejectForm
from leads.models import Lead, LeadStage, Opportunity, OpportunityStage

TEMPLATE = "leads/boards/board.html"
# Request parameters that are not filters (kept out of links and stamps).
NON_FILTER_PARAMS = ("column", "after", "sync")
MESSAGE_LEVELS = {"success": messages.SUCCESS, "error": messages.ERROR}


class HandoffBoard:
    name = "handoff"
    title = "Handoff board"
    intro = (
        "Leads between marketing and sales: MQLs waiting for a rep, accepted and "
        "qualified leads, and what sales sent back for nurture."
    )
    noun = "lead"
    nouns = "leads"
    columns = board_selectors.HANDOFF_COLUMNS
    model = Lead
    detail_url_name = "leads:lead_detail"
    filter_form = BoardFilterForm
    url_name = "boards:handoff"
    move_url_name = "boards:lead_move"
    cannot_move = "You cannot move this lead: reps move their own leads, managers their team's."

    def records(self, **filters):
        return board_selectors.handoff_leads(**filters)

    def can_move(self, user, lead) -> bool:
        return permissions.can_work_lead(user, lead)

    def card(self, row, *, may_move, menu, **card):
        """A lead card; an SQL lead's menu links to converting it on its page."""
        return board_display.lead_card(
            row,
            menu=menu if may_move else None,
            convert=may_move and row.stage == LeadStage.SQL,
            **card,
        )

    def targets(self, stage) -> list[tuple[str, str]]:
        """(column, menu label) of the moves a card's menu offers in `stage`."""
        labels = {LeadStage.SAL: "Accept (to SAL)", LeadStage.SQL: "Qualify (to SQL)",
                  LeadStage.RECYCLED: "Reject… (to Recycled)"}  # fmt: skip
        return [
            (to, labels[to])
            for (source, to) in board_moves.HANDOFF_MOVES
            if source == stage and to in labels
        ]

    def details_form(self, to_stage):
        return LeadRejectForm if to_stage in board_moves.HANDOFF_MOVES_WITH_DETAILS else None

    def details_initial(self, lead, to_stage) -> dict:
        return {}

    def check(self, *, record, to_stage, expected_version) -> None:
        board_moves.lead_board_move_check(
            lead=record, to_stage=to_stage, expected_version=expected_version
        )

    def move(self, *, record, actor, to_stage, expected_version, details):
        return board_moves.lead_board_move(
            lead=record,
            actor=actor,
            to_stage=to_stage,
            expected_version=expected_version,
            **details,
        )

    def moved_message(self, record, column, details) -> str:
        if column.stage == LeadStage.RECYCLED:
            return f"{record} rejected ({details['reason']}) and returned to marketing."
        if column.stage == LeadStage.SAL:
            return f"You accepted {record}: it is in SAL. Log your first contact next."
        return f"{record} moved to {column.label}."


class DealBoard:
    name = "deals"
    title = "Deal board"
    intro = (
        "Open deals by stage, and the deals closed in the last "
        f"{board_selectors.CLOSED_WINDOW_DAYS} days. Headers show each column's count and amount."
    )
    noun = "deal"
    nouns = "deals"
    columns = board_selectors.DEAL_COLUMNS
    model = Opportunity
    detail_url_name = "leads:opportunity_detail"
    filter_form = DealBoardFilterForm
    url_name = "boards:deals"
    move_url_name = "boards:deal_move"
    cannot_move = "You cannot move this deal: reps move their own deals, managers their team's."

    def records(self, **filters):
        return board_selectors.board_deals(**filters)

    def can_move(self, user, deal) -> bool:
        return permissions.can_work_opportunity(user, deal)

    def card(self, row, *, may_move, menu, **card):
        return board_display.deal_card(row, menu=menu if may_move else None, **card)

    def targets(self, stage) -> list[tuple[str, str]]:
        """(column, menu label) of the moves a card's menu offers in `stage`:
        any other column for an open deal, none for a closed one."""
        if stage not in OpportunityStage.open_stages():
            return []
        labels = {OpportunityStage.WON: "Won…", OpportunityStage.LOST: "Lost…"}
        return [
            (column.stage, labels.get(column.stage, column.label))
            for column in self.columns
            if column.stage != stage
        ]

    def details_form(self, to_stage):
        return {OpportunityStage.WON: DealWonForm, OpportunityStage.LOST: DealLostForm}.get(
            to_stage
        )

    def details_initial(self, deal, to_stage) -> dict:
        if to_stage == OpportunityStage.WON:
            return {"amount": deal.amount or None, "closed_on": timezone.localdate()}
        return {}

    def check(self, *, record, to_stage, expected_version) -> None:
        board_moves.deal_board_move_check(
            opportunity=record, to_stage=to_stage, expected_version=expected_version
        )

    def move(self, *, record, actor, to_stage, expected_version, details):
        return services.opportunity_move(
            opportunity=record,
            actor=actor,
            to_stage=to_stage,
            expected_version=expected_version,
            **details,
        )

    def moved_message(self, record, column, details) -> str:
        if column.stage == OpportunityStage.LOST:
            return f"{record} lost ({details['loss_reason']})."
        if column.stage == OpportunityStage.WON:
            return f"{record} won. Well done."
        return f"{record} moved to {column.label}."


HANDOFF = HandoffBoard()
DEALS = DealBoard()


# --- Building the columns --------------------------------------------------------------


def _filter_query(params: QueryDict) -> str:
    """The filters of a request, URL-encoded, without paging or stamps."""
    query = params.copy()
    for key in list(query):
        if key in NON_FILTER_PARAMS or key.startswith("stamp_") or not query.get(key):
            del query[key]
    return query.urlencode()


def _url_pattern(url_name: str) -> str:
    """A record URL with `{}` for the id: one reverse() per page rather than
    one per card (hundreds of cards)."""
    return reverse(url_name, args=[987654321]).replace("987654321", "{}")


def _cards(request, board, column, rows, *, query, highlight=None) -> SafeString:
    """The rendered cards of a column's rows, joined, each with what the viewer
    may do with it (no queries: roles and the manager's team are cached on the
    user)."""
    user, clock = request.user, board_display.Clock.read()
    move_url, detail_url = _url_pattern(board.move_url_name), _url_pattern(board.detail_url_name)
    # Every card of a column is in the column's stage, so they share one menu;
    # who may move a card in a stage depends on its owner alone
    # (permissions.can_work_lead and can_work_opportunity), so that is decided
    # once per owner rather than once per card.
    menu = _move_menu(request, board, column, query=query)
    may_move = {}
    cards = []
    for row in rows:
        if row.owner_id not in may_move:
            may_move[row.owner_id] = board.can_move(user, row)
        cards.append(
            board.card(
                row,
                may_move=may_move[row.owner_id],
                menu=menu,
                clock=clock,
                move_url=move_url.format(row.id),
                detail_url=detail_url.format(row.id),
                flash=row.id == highlight,
            )
        )
    return SafeString("".join(cards))


def _move_menu(request, board, column, *, query) -> board_display.MoveMenu | None:
    """The move menu of a column's cards (None when its cards cannot move):
    the form's hidden fields and one button per column a card may go to."""
    targets = board.targets(column.stage)
    if not targets:
        return None
    board_url = reverse(board.url_name)
    fields = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<input type="hidden" name="next" value="{}">'
        '<input type="hidden" name="from_stage" value="{}">',
        get_token(request),
        f"{board_url}?{query}" if query else board_url,
        column.stage,
    )
    buttons = format_html_join(
        "", '<button type="submit" name="to_stage" value="{}">{}</button>', targets
    )
    return board_display.MoveMenu(fields, buttons)


def _column(
    request, board, records, column, summary, *, query, after="", oob=False, highlight=None
) -> dict:
    page = board_selectors.column_page(records, column.stage, after=after)
    more_url = ""
    if page.has_next:
        more = f"column={column.stage}&after={page.next_cursor}"
        more_url = f"{reverse(board.url_name)}?{f'{query}&' if query else ''}{more}"
    return {
        "column": column,
        "summary": summary,
        "cards": _cards(request, board, column, page.items, query=query, highlight=highlight),
        "more_url": more_url,
        "needs_details": board.details_form(column.stage) is not None,
        "oob": oob,
    }


def _context(request, board, *, query: str, **extra) -> dict:
    board_url = reverse(board.url_name)
    return {
        "board": board,
        "board_url": board_url,
        "query": query,
        "can_move_any": _can_move_any(request.user),
        **extra,
    }


def _can_move_any(user) -> bool:
    return permissions.is_admin(user) or roles.is_sales(user)


# --- The boards --------------------------------------------------------------------------


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def handoff_board(request):
    """The handoff board: MQL, SAL, SQL and recycled leads."""
    return _board(request, HANDOFF)


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def deal_board(request):
    """The deal board: discovery, demo, proposal, negotiation, won and lost."""
    return _board(request, DEALS)


def _board(request, board):
    form = valid_filter_form(board.filter_form, request.GET, request.user)
    filters = form.selector_kwargs()
    query = _filter_query(request.GET)
    stages = {column.stage: column for column in board.columns}
    column = stages.get(request.GET.get("column", ""))
    after = request.GET.get("after", "")
    fragment = is_fragment(request)

    if fragment and request.GET.get("sync"):
        records = board.records(**filters)
        return _board_update(request, board, records, query=query, stamps=request.GET)
    shown = [column] if column else board.columns
    # One column (its page, its fragment, its next cards) reads and counts
    # that column's cards only, not the board's.
    records = board.records(stages=[c.stage for c in shown], **filters)
    if fragment and column and after:
        # The next cards of one column ("show more", or scrolling to its end).
        data = _column(request, board, records, column, None, query=query, after=after)
        context = _context(request, board, query=query, col=data)
        return render(request, f"{TEMPLATE}#more-cards", context)
    summaries = board_selectors.column_summaries(records, shown)
    columns = [
        _column(request, board, records, c, summaries[c.stage], query=query, after=after)
        for c in shown
    ]
    context = _context(request, board, query=query, form=form, columns=columns, single=column)
    if fragment:
        return render(request, f"{TEMPLATE}#{'column' if column else 'board'}",
                      {**context, "col": columns[0]} if column else context)  # fmt: skip
    return render(request, TEMPLATE, context)


def _board_update(
    request, board, records, *, query, stamps=None, stages=(), message="", level="", highlight=None
):
    """Out-of-band swaps for the page: the columns in `stages`, those whose
    stamp differs from `stamps` (what the page holds), and a message."""
    summaries = board_selectors.column_summaries(records, board.columns)
    wanted = set(stages)
    if stamps is not None:
        wanted |= {
            column.stage
            for column in board.columns
            if stamps.get(f"stamp_{column.stage}") != summaries[column.stage].stamp
        }
    columns = [
        _column(
            request,
            board,
            records,
            column,
            summaries[column.stage],
            query=query,
            oob=True,
            highlight=highlight,
        )
        for column in board.columns
        if column.stage in wanted
    ]
    context = _context(request, board, query=query, columns=columns, message=message, level=level)
    return render(request, f"{TEMPLATE}#board-update", context)


# --- Moving a card -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def lead_move(request, pk):
    """Move a lead to a handoff board column (GET: the form, without JavaScript)."""
    lead = get_object_or_404(Lead.objects.select_related("owner"), pk=pk)
    return _move(request, HANDOFF, lead)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def deal_move(request, pk):
    """Move a deal to a deal board column (GET: the form, without JavaScript)."""
    deal = get_object_or_404(Opportunity.objects.select_related("account", "owner"), pk=pk)
    return _move(request, DEALS, deal)


def _version(value) -> int | None:
    return int(value) if value and str(value).isdigit() else None


def _move(request, board, record):
    data = request.POST if request.method == "POST" else request.GET
    fragment = is_fragment(request)
    stages = {column.stage: column for column in board.columns}
    column = stages.get(data.get("to_stage", ""))
    from_stage = data.get("from_stage", "") if data.get("from_stage") in stages else record.stage
    version = _version(data.get("version"))
    board_url = reverse(board.url_name)
    next_url = safe_next_url(request, data.get("next", ""), board_url)
    query = _current_query(request) if fragment else urlsplit(next_url).query

    def done(message, level, *, current=record, close_dialog=False):
        if not fragment:
            messages.add_message(request, MESSAGE_LEVELS[level], message)
            return redirect(next_url)
        form = valid_filter_form(board.filter_form, QueryDict(query), request.user)
        response = _board_update(
            request,
            board,
            board.records(**form.selector_kwargs()),
            query=query,
            stages={from_stage, current.stage, column.stage if column else from_stage},
            message=message,
            level=level,
            highlight=current.pk,
        )
        if close_dialog:
            trigger_client_event(response, "board:dialog-close", after="settle")
        return trigger_client_event(response, "board:sync", after="settle")

    if not board.can_move(request.user, record):
        if fragment and request.method == "POST":
            return done(board.cannot_move, "error")
        raise PermissionDenied(board.cannot_move)
    if column is None:
        if request.method == "POST":
            return done("Choose a column to move the card to.", "error")
        return _move_page(request, board, record, column=None, version=version, next_url=next_url)

    try:
        board.check(record=record, to_stage=column.stage, expected_version=version)
    except services.ConflictError as error:
        return done(str(error), "error", current=error.current, close_dialog=True)
    except services.TransitionError as error:
        return done(str(error), "error", close_dialog=True)

    details = {}
    form_class = board.details_form(column.stage)
    if form_class is not None:
        if request.method == "GET" or not data.get("details"):
            form = form_class(
                initial=board.details_initial(record, column.stage), auto_id="move_%s"
            )
            return _details(request, board, record, column, form, version, next_url)
        form = form_class(request.POST, auto_id="move_%s")
        if not form.is_valid():
            return _details(request, board, record, column, form, version, next_url)
        details = form.cleaned_data
    elif request.method == "GET":
        return _move_page(request, board, record, column=column, version=version, next_url=next_url)

    try:
        moved = board.move(
            record=record,
            actor=request.user,
            to_stage=column.stage,
            expected_version=version,
            details=details,
        )
    except services.ConflictError as error:
        return done(str(error), "error", current=error.current, close_dialog=True)
    except (services.TransitionError, PermissionDenied) as error:
        return done(str(error), "error", close_dialog=True)
    return done(
        board.moved_message(moved, column, details), "success", current=moved, close_dialog=True
    )


def _current_query(request) -> str:
    """The board's filters as the page shows them: htmx sends the page's URL."""
    current = getattr(request.htmx, "current_url", None) or ""
    return _filter_query(QueryDict(urlsplit(current).query))


def _details(request, board, record, column, form, version, next_url):
    """The form a move needs first: in the dialog (htmx), or as a page."""
    context = {
        "board": board,
        "record": record,
        "column": column,
        "form": form,
        "version": version if version is not None else record.version,
        "from_stage": record.stage,
        "next_url": next_url,
        "move_url": reverse(board.move_url_name, args=[record.pk]),
    }
    if is_fragment(request):
        response = render(request, f"{TEMPLATE}#dialog-update", context)
        return trigger_client_event(response, "board:dialog-open", after="settle")
    return render(request, "leads/boards/move.html", context)


def _move_page(request, board, record, *, column, version, next_url):
    """Without JavaScript: confirm a move, or choose where to move the card."""
    targets = board.targets(record.stage)
    context = {
        "board": board,
        "record": record,
        "column": column,
        "form": None,
        "targets": targets,
        "version": version if version is not None else record.version,
        "from_stage": record.stage,
        "next_url": next_url,
        "move_url": reverse(board.move_url_name, args=[record.pk]),
    }
    return render(request, "leads/boards/move.html", context)
