"""Figures computed from the derived reporting tables, served from Django's
cache (the database cache: shared by every web and worker process) until
those tables change.

The derived tables change only when a refresh applies pending changes or a
rebuild runs, and both bump `RefreshState.generation` in the transaction that
changes them. A page reads the refresh state once (it shows "Figures as of
…" from it) and computes its figures inside `figures_cached(state.figures_tag)`
(the generation, and the state row's epoch, which a re-created row changes):
there, each call of a `@derived_figure` function is looked up by the
function and its arguments, and the stored value is served only when it was
computed under that same tag; otherwise it is computed and stored with the
tag. So invalidation is by construction: no entry of an older generation is
ever served, and an entry is stored only under a generation read before its
figures were (it holds at least that generation's data). One entry per
function and arguments is kept (a newer generation overwrites it), so
entries do not pile up with refreshes.

Only reads of the derived tables are cached. Figures read from live tables
(deals, spend, breaches, retrospectives, SLA versions, goals) are computed on
every request. What else a cached figure depends on is in its key: a team
filter's key holds the team's member ids (memberships are live), and a figure
that depends on the moment is stored in a form that can be judged at any
later moment (kpis.response_clocks).

Outside `figures_cached` (tests, scripts, the floors of scripts/bench_floors.py)
the functions compute directly.
"""

import functools
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime

from django.core.cache import cache
from django.db.models import F

from reporting.models import RefreshState
from reporting.periods import Period, ReportFilter

# Bump when a cached figure's definition or shape changes, so a deploy never
# serves values computed by the previous code.
FIGURES_VERSION = 1
# Entries of the current generation stay this long without a refresh (the
# warm-up after each refresh that changed the tables stores them again).
TIMEOUT_SECONDS = 7 * 24 * 3600

_tag: ContextVar[str | None] = ContextVar("reporting_figures_tag", default=None)


@contextmanager
def figures_cached(tag: str) -> Iterator[None]:
    """Serve `@derived_figure` calls made inside from the cache, for the
    derived tables as `tag` says (RefreshState.figures_tag, read before)."""
    token = _tag.set(tag)
    try:
        yield
    finally:
        _tag.reset(token)


def _normalized(value):
    """A value's stable, hashable form for a cache key."""
    if isinstance(value, ReportFilter):
        owners = value.owner_ids()
        return ("filter", _normalized(value.period), value.segment,
                None if owners is None else tuple(sorted(owners)))  # fmt: skip
    if isinstance(value, Period):
        # The label is display only; the key decides the previous period.
        return ("period", value.key, value.start.isoformat(), value.end.isoformat())
    if isinstance(value, dict):
        return tuple(sorted((str(k), _normalized(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | frozenset | set):
        items = [_normalized(v) for v in value]
        return tuple(sorted(items, key=repr) if isinstance(value, set | frozenset) else items)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"No stable cache key for {type(value).__name__} arguments.")


def figure_key(function, args: tuple, kwargs: dict) -> str:
    """The cache key of one figure function's call (without the generation's
    tag: the entry carries it)."""
    raw = repr((_normalized(args), _normalized(kwargs))).encode()
    digest = hashlib.sha256(raw).hexdigest()[:40]
    return (
        f"reporting:figure:{FIGURES_VERSION}:{function.__module__}.{function.__qualname__}:{digest}"
    )


def derived_figure(function):
    """Cache `function`'s value per generation inside `figures_cached` (see
    the module docstring). The function must read only the derived tables
    (and what its arguments say) and return a picklable value;
    `function.uncached` computes directly."""

    @functools.wraps(function)
    def served(*args, **kwargs):
        tag = _tag.get()
        if tag is None:
            return function(*args, **kwargs)
        key = figure_key(function, args, kwargs)
        entry = cache.get(key)
        if entry is not None and entry[0] == tag:
            return entry[1]
        value = function(*args, **kwargs)
        cache.set(key, (tag, value), TIMEOUT_SECONDS)
        return value

    served.uncached = function
    return served


def figures_invalidate() -> None:
    """Make every cached figure stale at once (bump the generation), as a
    refresh that changed the tables does. For benchmarks measuring the first
    request after a change, and for an operator who edited a derived table
    by hand."""
    updated = RefreshState.objects.filter(pk=1).update(generation=F("generation") + 1)
    if not updated:
        RefreshState.objects.get_or_create(pk=1, defaults={"generation": 1})
