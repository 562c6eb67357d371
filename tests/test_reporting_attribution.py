"""Attribution weights: each model on hand-made paths, and the weights of every
model summing to 1 for every path (1- and 2-touch paths included)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.attribution import MODELS, Model, Touch, path_weights

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def touches(*days: float) -> list[Touch]:
    return [Touch(id=i + 1, occurred_at=T0 + timedelta(days=d)) for i, d in enumerate(days)]


def weights(model, path, *, lead_day=0.0, opportunity_day=None, end_day=None):
    last = (path[-1].occurred_at - T0).days if path else 0
    opportunity_day = last if opportunity_day is None else opportunity_day
    end_day = opportunity_day if end_day is None else end_day
    return path_weights(
        model,
        path,
        lead_created_at=T0 + timedelta(days=lead_day),
        opportunity_created_at=T0 + timedelta(days=opportunity_day),
        end=T0 + timedelta(days=end_day),
    )


def approx(values):
    return pytest.approx(values, abs=1e-12)


def test_first_last_and_linear():
    path = touches(0, 1, 2, 3)
    assert weights(Model.FIRST_TOUCH, path) == approx([1, 0, 0, 0])
    assert weights(Model.LAST_TOUCH, path) == approx([0, 0, 0, 1])
    assert weights(Model.LINEAR, path) == approx([0.25] * 4)


def test_u_shaped_on_first_touch_and_lead_creation():
    # The lead was created at the third touch (day 2): 40/40 there, 20 shared.
    path = touches(0, 1, 2, 3, 4)
    assert weights(Model.U_SHAPED, path, lead_day=2) == approx(
        [0.4, 0.2 / 3, 0.4, 0.2 / 3, 0.2 / 3]
    )
    # Created by the first touch: that touch holds both positions (80%).
    assert weights(Model.U_SHAPED, path, lead_day=0) == approx([0.8, 0.05, 0.05, 0.05, 0.05])


def test_u_shaped_short_paths():
    assert weights(Model.U_SHAPED, touches(0)) == approx([1.0])
    # Two touches, lead created by the second: 40 + 10 each (the 20 has no middle).
    assert weights(Model.U_SHAPED, touches(0, 1), lead_day=1) == approx([0.5, 0.5])
    # Two touches, lead created by the first: 80 / 20.
    assert weights(Model.U_SHAPED, touches(0, 1), lead_day=0) == approx([0.8, 0.2])


def test_w_shaped_and_full_path():
    # Lead created at day 1, opportunity at day 3 (touch index 3), deal won after day 5.
    path = touches(0, 1, 2, 3, 4, 5)
    w = weights(Model.W_SHAPED, path, lead_day=1, opportunity_day=3, end_day=6)
    assert w == approx([0.3, 0.3, 0.1 / 3, 0.3, 0.1 / 3, 0.1 / 3])
    full = weights(Model.FULL_PATH, path, lead_day=1, opportunity_day=3, end_day=6)
    assert full == approx([0.225, 0.225, 0.05, 0.225, 0.05, 0.225])


def test_time_decay_halves_every_seven_days():
    path = touches(0, 7, 14)
    w = weights(Model.TIME_DECAY, path, opportunity_day=14)
    assert w == approx([1 / 7, 2 / 7, 4 / 7])
    assert w[2] / w[1] == pytest.approx(2.0)


def test_empty_path_has_no_weights():
    for model in MODELS:
        assert weights(model, []) == []


paths = st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    days=paths,
    lead_day=st.floats(min_value=-30, max_value=430, allow_nan=False),
    opportunity_offset=st.floats(min_value=-30, max_value=60, allow_nan=False),
)
def test_weights_sum_to_one_for_every_model(days, lead_day, opportunity_offset):
    path = touches(*sorted(days))
    opportunity_day = max(days) + opportunity_offset
    for model in MODELS:
        w = weights(
            model,
            path,
            lead_day=lead_day,
            opportunity_day=opportunity_day,
            end_day=max(days) + 30,
        )
        assert len(w) == len(path)
        assert all(value >= 0 for value in w)
        assert sum(w) == pytest.approx(1.0, abs=1e-9), model


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("count", [1, 2, 3])
def test_short_paths_sum_to_one(model, count):
    for lead_day in (-1, 0, 0.5, 1, 5):
        w = weights(model, touches(*range(count)), lead_day=lead_day)
        assert sum(w) == pytest.approx(1.0, abs=1e-12)
