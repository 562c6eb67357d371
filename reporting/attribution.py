"""Multi-touch attribution: how much of a deal's amount each touchpoint earns.

Pure functions, no database: `path_weights(model, path)` returns one weight per
touch of an ordered path, and the weights of every model sum to 1 for every
path of one or more touches (tested, including 1- and 2-touch paths).

The path of an opportunity (see `reporting.rollups`) is the touchpoints of its
source lead in time order (ties broken by id), up to a moment:

- pipeline: touches at or before the opportunity's creation;
- revenue: touches before the end of the day the deal was won.

Positions in a path:

- first touch: the earliest touch;
- lead creation touch: the last touch at or before the lead's creation (the
  form fill or visit that created it); when every touch came after the lead
  was created (e.g. an imported lead), the first touch;
- opportunity creation touch: the last touch at or before the opportunity's
  creation; when none came before it, the first touch;
- close touch: the last touch of the path (for a pipeline path, which ends at
  the opportunity's creation, this is the opportunity creation touch).

Positional models give each position its share; when two positions fall on
the same touch (a lead created by its first touch, a path of one touch), that
touch gets both shares. The "rest" share is split equally among the touches
that hold no position; when every touch holds a position (paths of one to
four touches), the rest is split equally among the distinct position touches.
So, for U-shaped: 1 touch: 100%; 2 touches, lead created by the second: 50/50;
2 touches, lead created by the first: 80/20; 3+ touches, lead created by the
first: 80% first, 20% shared by the others.

Time decay: a touch's weight halves with every 7 days between it and the end
of the path (the opportunity's creation for pipeline, the close for revenue),
normalised to sum to 1.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


class Model:
    FIRST_TOUCH = "first_touch"
    LAST_TOUCH = "last_touch"
    LINEAR = "linear"
    U_SHAPED = "u_shaped"
    W_SHAPED = "w_shaped"
    FULL_PATH = "full_path"
    TIME_DECAY = "time_decay"


# Positions a positional model gives a share to.
FIRST = "first_touch"
LEAD_CREATION = "lead_creation"
OPPORTUNITY_CREATION = "opportunity_creation"
CLOSE = "close"
REST = "rest"

HALF_LIFE_DAYS = 7

# The weights of each model, as stored with every result (AttributionScheme).
SCHEMES: dict[str, dict] = {
    Model.FIRST_TOUCH: {"positions": {FIRST: 1.0}, REST: 0.0},
    Model.LAST_TOUCH: {"positions": {CLOSE: 1.0}, REST: 0.0},
    Model.LINEAR: {"positions": {}, REST: 1.0},
    Model.U_SHAPED: {"positions": {FIRST: 0.4, LEAD_CREATION: 0.4}, REST: 0.2},
    Model.W_SHAPED: {
        "positions": {FIRST: 0.3, LEAD_CREATION: 0.3, OPPORTUNITY_CREATION: 0.3},
        REST: 0.1,
    },
    Model.FULL_PATH: {
        "positions": {
            FIRST: 0.225,
            LEAD_CREATION: 0.225,
            OPPORTUNITY_CREATION: 0.225,
            CLOSE: 0.225,
        },
        REST: 0.1,
    },
    Model.TIME_DECAY: {"half_life_days": HALF_LIFE_DAYS},
}

# The two models the attribution page compares unless asked for others.
DEFAULT_MODELS = (Model.LINEAR, Model.W_SHAPED)

MODEL_LABELS = {
    Model.FIRST_TOUCH: "First touch",
    Model.LAST_TOUCH: "Last touch",
    Model.LINEAR: "Linear",
    Model.U_SHAPED: "U-shaped (40/20/40)",
    Model.W_SHAPED: "W-shaped (30/30/30 + 10)",
    Model.FULL_PATH: "Full path (22.5 ×4 + 10)",
    Model.TIME_DECAY: "Time decay (7-day half-life)",
}

MODEL_HELP = {
    Model.FIRST_TOUCH: "All credit to the touch that brought the person in.",
    Model.LAST_TOUCH: "All credit to the last touch before the opportunity was created "
    "(pipeline) or before it was won (revenue).",
    Model.LINEAR: "Every touch on the path gets an equal share.",
    Model.U_SHAPED: "40% to the first touch, 40% to the lead creation touch, 20% shared by "
    "the other touches.",
    Model.W_SHAPED: "30% each to the first touch, the lead creation touch and the "
    "opportunity creation touch; 10% shared by the others.",
    Model.FULL_PATH: "22.5% each to the first touch, lead creation, opportunity creation and "
    "close touches; 10% shared by the others.",
    Model.TIME_DECAY: "Recent touches count more: a touch's weight halves for every 7 days "
    "between it and the opportunity's creation (pipeline) or close (revenue).",
}

MODELS = tuple(MODEL_LABELS)


@dataclass(frozen=True)
class Touch:
    """One touch on a path (only what attribution needs)."""

    id: int
    occurred_at: datetime
    channel: str = ""
    campaign_id: int | None = None
    asset_id: int | None = None


def positions(
    path: Sequence[Touch], *, lead_created_at: datetime, opportunity_created_at: datetime
) -> dict[str, int]:
    """The index in `path` (ordered, non-empty) of each position."""
    last = len(path) - 1
    lead_creation = 0
    opportunity_creation = 0
    for index, touch in enumerate(path):
        if touch.occurred_at <= lead_created_at:
            lead_creation = index
        if touch.occurred_at <= opportunity_created_at:
            opportunity_creation = index
    return {
        FIRST: 0,
        LEAD_CREATION: lead_creation,
        OPPORTUNITY_CREATION: opportunity_creation,
        CLOSE: last,
    }


def positional_weights(scheme: dict, count: int, where: dict[str, int]) -> list[float]:
    weights = [0.0] * count
    held = set()
    for position, share in scheme["positions"].items():
        weights[where[position]] += share
        held.add(where[position])
    rest = scheme[REST]
    others = [index for index in range(count) if index not in held]
    receivers = others or sorted(held)
    for index in receivers:
        weights[index] += rest / len(receivers)
    return weights


def time_decay_weights(path: Sequence[Touch], end: datetime) -> list[float]:
    half_life = timedelta(days=HALF_LIFE_DAYS).total_seconds()
    # Relative to the newest touch, so that very old paths do not underflow.
    newest = max(touch.occurred_at for touch in path)
    offset = max(0.0, (end - newest).total_seconds())
    raw = [
        0.5 ** ((offset + (newest - touch.occurred_at).total_seconds()) / half_life)
        for touch in path
    ]
    total = sum(raw)
    return [value / total for value in raw]


def path_weights(
    model: str,
    path: Sequence[Touch],
    *,
    lead_created_at: datetime,
    opportunity_created_at: datetime,
    end: datetime,
) -> list[float]:
    """One weight per touch of `path` (ordered by time, then id) under `model`;
    they sum to 1. An empty path has no weights."""
    if not path:
        return []
    if model == Model.TIME_DECAY:
        return time_decay_weights(path, end)
    where = positions(
        path, lead_created_at=lead_created_at, opportunity_created_at=opportunity_created_at
    )
    return positional_weights(SCHEMES[model], len(path), where)
