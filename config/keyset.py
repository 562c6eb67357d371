"""Keyset ("seek") pagination: pages through big tables by the last row's sort
key instead of OFFSET, so page 1,000 costs what page 1 does.

The ordering must be on a unique key (end it with the primary key) and all in
one direction, so that a row-value comparison `(a, b, id) < (x, y, z)` selects
the next page and PostgreSQL can walk a matching index.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import F
from django.db.models.fields.tuple_lookups import (  # Django's row-value lookups
    Tuple,
    TupleGreaterThan,
    TupleLessThan,
)


@dataclass
class KeysetPage:
    items: list
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None


def cursor_encode(values: list) -> str:
    raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values], default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str, model, keys: tuple[str, ...]) -> list | None:
    """The key values in `cursor`, or None when it is not a valid cursor for
    these keys (a hand-edited URL gets the first page, not an error)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(keys):
            return None
        return [
            model._meta.get_field(key).to_python(value)
            for key, value in zip(keys, values, strict=True)
        ]
    except (ValueError, TypeError, binascii.Error, ValidationError):
        return None


def keyset_page(
    queryset,
    *,
    keys: tuple[str, ...],
    descending: bool,
    size: int,
    after: str = "",
    before: str = "",
) -> KeysetPage:
    """One page of `queryset` ordered by `keys`. `after` (a next cursor) or
    `before` (a previous cursor) say where the page starts. One query (size + 1
    rows), whatever the depth."""
    model = queryset.model
    row = Tuple(*(F(key) for key in keys))
    forward_order = [f"-{key}" if descending else key for key in keys]
    backward_order = [key if descending else f"-{key}" for key in keys]
    seek_forward = TupleLessThan if descending else TupleGreaterThan
    seek_backward = TupleGreaterThan if descending else TupleLessThan

    after_values = cursor_decode(after, model, keys) if after else None
    before_values = cursor_decode(before, model, keys) if before else None

    if before_values is not None:
        rows = list(
            queryset.filter(seek_backward(row, tuple(before_values))).order_by(*backward_order)[
                : size + 1
            ]
        )
        has_more_before = len(rows) > size
        rows = list(reversed(rows[:size]))
        next_cursor = cursor_encode(_key_values(rows[-1], keys)) if rows else None
        previous_cursor = (
            cursor_encode(_key_values(rows[0], keys)) if rows and has_more_before else None
        )
        return KeysetPage(rows, next_cursor, previous_cursor)

    if after_values is not None:
        queryset = queryset.filter(seek_forward(row, tuple(after_values)))
    rows = list(queryset.order_by(*forward_order)[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    next_cursor = cursor_encode(_key_values(rows[-1], keys)) if has_more else None
    previous_cursor = cursor_encode(_key_values(rows[0], keys)) if after_values and rows else None
    return KeysetPage(rows, next_cursor, previous_cursor)


def _key_values(obj, keys):
    return [getattr(obj, key) for key in keys]


def count_capped(queryset, cap: int) -> tuple[int, bool]:
    """How many rows match, counting at most `cap` + 1 (a bounded query, not a
    full COUNT(*) over a big table). Returns (count, is_capped)."""
    count = queryset.order_by()[: cap + 1].count()
    return min(count, cap), count > cap
