"""The cards of the pipeline boards, rendered in Python.

A board page shows up to 300 cards. Through the template engine a card cost
about 0.1 ms even with its values worked out beforehand (some twenty
variable lookups, each localised and escaped), more than every query of the
page; filling the markup below with `_card_html` does the same in a quarter
of that, escaping every value. The board template places the rendered cards
(leads/templates/leads/boards/board.html) and keeps the columns around them.

The rows come from `board_selectors.column_page`: named tuples of
LEAD_CARD_FIELDS or DEAL_CARD_FIELDS, not model instances.
"""

import html
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from leads.models import Channel, LeadStage
from leads.selectors import SlaStatus
from leads.templatetags.leads_display import score_class

# The response clock shows on these columns' cards (later stages met it already).
CLOCK_STAGES = frozenset({LeadStage.MQL, LeadStage.SAL})
CHANNEL_LABELS = dict(Channel.choices)
DEAL_SUB_LENGTH = 60

CARD_OPEN = (
    '<li class="board-card{flash}" id="card-{pk}" data-move-url="{move_url}" '
    'data-version="{version}" data-stage="{stage}"{movable}>'
)
DEAL_CARD = CARD_OPEN + (
    '\n  <div class="board-card-title">\n    <a href="{detail_url}">{title}</a>{badge}\n  </div>'
    '\n  <div class="board-card-sub">{sub}</div>'
    '\n  <div class="board-card-facts">\n    <strong class="board-card-amount">{amount}</strong>'
    "\n    <span>{owner}</span>\n  </div>"
    '\n  <div class="board-card-facts muted">\n    <span>{age} in stage</span>'
    "\n    <span>{close}</span>\n  </div>{menu}\n</li>\n"
)
LEAD_CARD = CARD_OPEN + (
    '\n  <div class="board-card-title">\n    <a href="{detail_url}">{title}</a>'
    '\n    <span class="badge {score_class}" title="Score">{score}</span>\n  </div>'
    '\n  <div class="board-card-sub">{company}</div>'
    '\n  <div class="board-card-facts">\n    <span>{owner}</span>'
    '\n    <span class="muted">{source}</span>\n  </div>{clock}{menu}\n</li>\n'
)
FLASH = mark_safe(" board-card-flash")
MOVABLE = mark_safe(" data-movable")
NOTHING = mark_safe("")
MARKETING_BADGE = mark_safe(
    '\n    <span class="badge badge-marketing" title="Marketing-sourced">Marketing</span>'
)
CONTACTED_IN_TIME = mark_safe('<span class="badge badge-ok">Contacted in time</span>')
CONTACTED_LATE = mark_safe('<span class="badge badge-warn">Contacted late</span>')
NO_CLOSE_DATE = mark_safe('<span class="muted">No close date</span>')
CLOCK_FACT = '\n  <div class="board-card-facts">{clock}</div>'
# The move menu: the form's fixed fields (CSRF token, where to return, the
# column it leaves) and its buttons are the same for a whole column.
MOVE_MENU = (
    '\n  <details class="card-menu">\n    <summary>Move<span class="visually-hidden"> {label}'
    '</span></summary>\n    <form method="post" action="{move_url}" hx-post="{move_url}" '
    'hx-swap="none">\n      {fields}<input type="hidden" name="version" value="{version}">'
    "{buttons}\n    </form>\n  </details>"
)
CONVERT_MENU = (
    '\n  <details class="card-menu">\n    <summary>Move<span class="visually-hidden"> {label}'
    '</span></summary>\n    <a href="{detail_url}?do=convert">Convert on the lead page…</a>'
    "\n  </details>"
)


class Clock(NamedTuple):
    """The moment a column is rendered: its cards' response clocks, ages and
    close dates are all read against it."""

    now: datetime
    today: date

    @classmethod
    def read(cls) -> "Clock":
        return cls(timezone.now(), timezone.localdate())


class MoveMenu(NamedTuple):
    """What every movable card of a column puts in its move menu's form."""

    fields: SafeString  # hidden inputs: CSRF token, next URL, from_stage
    buttons: SafeString  # one submit button per column the card may go to


def deal_card(
    row, *, clock: Clock, detail_url: str, move_url: str, menu: MoveMenu | None, flash: bool
) -> SafeString:
    """A deal card from a deal board row, with its move menu when `menu` is
    given (the viewer may move it)."""
    has_account = row.account_id is not None
    return _card_html(
        DEAL_CARD,
        **_card_attributes(row, move_url=move_url, movable=menu is not None, flash=flash),
        detail_url=detail_url,
        title=row.account__name if has_account else row.name,
        badge=MARKETING_BADGE if row.is_marketing_sourced else NOTHING,
        sub=_truncated(row.name, DEAL_SUB_LENGTH) if has_account else "No account",
        amount=amount(row.amount),
        owner=_person(row, "Unassigned"),
        age=age_in_stage(row.stage_changed_at, clock.now),
        close=close_date(
            closed_on=row.closed_on, expected_close_on=row.expected_close_on, today=clock.today
        ),
        menu=_move_menu(row, row.name, move_url, menu) if menu else NOTHING,
    )


def lead_card(
    row,
    *,
    clock: Clock,
    detail_url: str,
    move_url: str,
    menu: MoveMenu | None,
    convert: bool,
    flash: bool,
) -> SafeString:
    """A lead card from a handoff board row, with its move menu when `menu`
    is given, else, when `convert`, a menu that links to converting the lead
    on its page."""
    label = f"{row.first_name} {row.last_name}".strip() or row.email
    if menu:
        card_menu = _move_menu(row, label, move_url, menu)
    elif convert:
        card_menu = _card_html(CONVERT_MENU, label=label, detail_url=detail_url)
    else:
        card_menu = NOTHING
    clock_badge = response_clock(row, clock.now) if row.stage in CLOCK_STAGES else NOTHING
    return _card_html(
        LEAD_CARD,
        **_card_attributes(row, move_url=move_url, movable=menu is not None, flash=flash),
        detail_url=detail_url,
        title=label,
        score_class=score_class(row.score),
        score=row.score,
        company=row.company or row.company_domain or "—",
        owner=_person(row, "Unassigned"),
        # As get_source_channel_display() says it: an unknown value as it is.
        source=CHANNEL_LABELS.get(row.source_channel, row.source_channel) or "No source",
        clock=_card_html(CLOCK_FACT, clock=clock_badge) if clock_badge else NOTHING,
        menu=card_menu,
    )


def _card_html(markup: str, **values) -> SafeString:
    """`markup` filled with `values`, each escaped unless it is already safe:
    what `format_html` does, without its per-argument check for lazy strings
    (a card has a dozen values and a page hundreds of cards)."""
    return SafeString(
        markup.format(
            **{
                name: value.__html__() if hasattr(value, "__html__") else html.escape(str(value))
                for name, value in values.items()
            }
        )
    )


def _card_attributes(row, *, move_url: str, movable: bool, flash: bool) -> dict:
    return {
        "flash": FLASH if flash else NOTHING,
        "pk": row.id,
        "move_url": move_url,
        "version": row.version,
        "stage": row.stage,
        "movable": MOVABLE if movable else NOTHING,
    }


def _move_menu(row, label: str, move_url: str, menu: MoveMenu) -> SafeString:
    return _card_html(
        MOVE_MENU,
        label=label,
        move_url=move_url,
        fields=menu.fields,
        version=row.version,
        buttons=menu.buttons,
    )


def amount(value: Decimal) -> str:
    """A deal's amount as the `money` filter says it ("$12,345", "$1,234.50"),
    without the three locale lookups that filter makes per call: Accord speaks
    en-us only (no LocaleMiddleware). tests/test_boards.py holds them equal."""
    if value == value.to_integral_value():
        return f"${int(value):,}"
    return f"${value:,.2f}"


def day(value: date) -> str:
    """A date as date_format(value, "M j, Y") says it ("Dec 1, 2026"), at a
    tenth of its cost (it parses the format and builds a formatter per call);
    tests/test_boards.py holds them equal."""
    return f"{MONTHS_3[value.month].title()} {value.day}, {value.year:04d}"


def _person(row, empty: str) -> str:
    """The owner's full name, else username (as the `person` filter says it)."""
    if row.owner_id is None:
        return empty
    return f"{row.owner__first_name} {row.owner__last_name}".strip() or row.owner__username


def _truncated(text: str, length: int) -> str:
    return Truncator(text).chars(length) if len(text) > length else text


def _span(delta: timedelta) -> str:
    """2d 4h, 3h 20m, 45m."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h" if hours and days < 7 else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def response_clock(lead, now: datetime) -> SafeString:
    """Time left on the lead's response clock, or how long it is overdue (red).
    `lead` is anything with the lead's clock fields (a model or a board row)."""
    status = SlaStatus.of(lead, now)
    if status == SlaStatus.NONE:
        return NOTHING
    due = lead.response_due_at
    if status == SlaStatus.WAITING:
        return _card_html(
            '<span class="badge {css}" title="Respond by {due}">{span} left</span>',
            css="badge-warn" if due - now < timedelta(hours=1) else "badge-brand",
            due=date_format(due, "M j, H:i"),
            span=_span(due - now),
        )
    if status == SlaStatus.OVERDUE:
        return _card_html(
            '<span class="badge badge-bad" title="Was due {due}">Overdue {span}</span>',
            due=date_format(due, "M j, H:i"),
            span=_span(now - due),
        )
    if status == SlaStatus.MET:
        return CONTACTED_IN_TIME
    return CONTACTED_LATE


def age_in_stage(stage_changed_at: datetime, now: datetime) -> str:
    """How long the card has been in its column: 'today', '1 day', '12 days'."""
    days = (now - stage_changed_at).days
    if days < 1:
        return "today"
    return "1 day" if days == 1 else f"{days} days"


def close_date(
    *, closed_on: date | None, expected_close_on: date | None, today: date
) -> SafeString:
    """The close date a deal card shows: when it closed, or when it is expected
    to (flagged once that date has passed)."""
    if closed_on:
        return _card_html("Closed {date}", date=day(closed_on))
    if expected_close_on is None:
        return NO_CLOSE_DATE
    if expected_close_on < today:
        return _card_html(
            '<span class="board-late" title="The expected close date has passed">Close {date}'
            "</span>",
            date=day(expected_close_on),
        )
    return _card_html("Close {date}", date=day(expected_close_on))
