"""Business-hours arithmetic, as properties (hypothesis) and worked examples."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.clocks import BusinessCalendar, business_due, business_hours_between

ZONES = ["America/Chicago", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "UTC",
         "Australia/Sydney", "America/Sao_Paulo"]  # fmt: skip

calendars = st.builds(
    lambda zone, days, start_hour, length, holidays: BusinessCalendar(
        time_zone=zone,
        working_days=frozenset(days),
        day_starts=time(start_hour),
        day_ends=time(min(23, start_hour + length), 59 if start_hour + length >= 23 else 0),
        holidays=frozenset(holidays),
    ),
    zone=st.sampled_from(ZONES),
    days=st.sets(st.integers(0, 6), min_size=1),
    start_hour=st.integers(0, 20),  # windows over 2-3 am cross daylight-saving gaps
    length=st.integers(1, 12),
    holidays=st.sets(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=5),
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
hours = st.decimals(min_value=Decimal("0.25"), max_value=Decimal("60"), places=2)


@settings(max_examples=300, deadline=None)
@given(calendar=calendars, start=moments, response=hours)
def test_due_time_is_never_inside_closed_hours(calendar, start, response):
    due = business_due(start, response, calendar)
    assert calendar.is_open(due)
    assert due >= start


@settings(max_examples=300, deadline=None)
@given(calendar=calendars, start=moments, response=hours)
def test_due_time_leaves_exactly_the_working_hours(calendar, start, response):
    due = business_due(start, response, calendar)
    assert business_hours_between(start, due, calendar) == pytest.approx(float(response), abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(calendar=calendars, first=moments, gap=st.timedeltas(timedelta(0), timedelta(days=20)),
       response=hours)  # fmt: skip
def test_due_time_is_monotonic_in_the_start(calendar, first, gap, response):
    assert business_due(first, response, calendar) <= business_due(first + gap, response, calendar)


CHICAGO_OFFICE = BusinessCalendar(
    time_zone="America/Chicago",
    working_days=frozenset({0, 1, 2, 3, 4}),
    day_starts=time(9),
    day_ends=time(17),
    holidays=frozenset({date(2026, 12, 25)}),
)


def chicago(*args):
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("America/Chicago"))


@pytest.mark.parametrize(
    "start, response, due",
    [
        (chicago(2026, 11, 23, 10, 0), 1, chicago(2026, 11, 23, 11, 0)),  # Monday morning
        (chicago(2026, 11, 23, 16, 30), 1, chicago(2026, 11, 24, 9, 30)),  # runs over the night
        (chicago(2026, 11, 23, 16, 0), 1, chicago(2026, 11, 23, 17, 0)),  # ends at closing
        (chicago(2026, 11, 27, 16, 0), 2, chicago(2026, 11, 30, 10, 0)),  # Friday -> Monday
        (chicago(2026, 11, 28, 12, 0), 1, chicago(2026, 11, 30, 10, 0)),  # Saturday lead
        (chicago(2026, 11, 23, 6, 0), 24, chicago(2026, 11, 25, 17, 0)),  # three working days
        (chicago(2026, 12, 24, 16, 0), 2, chicago(2026, 12, 28, 10, 0)),  # Christmas skipped
    ],
)
def test_worked_examples(start, response, due):
    assert business_due(start, Decimal(response), CHICAGO_OFFICE) == due


def test_clock_over_the_spring_forward_weekend_counts_real_hours():
    # DST starts in Chicago on Sunday 2027-03-14; working hours are unaffected.
    due = business_due(chicago(2027, 3, 12, 16, 0), Decimal(2), CHICAGO_OFFICE)
    assert due == chicago(2027, 3, 15, 10, 0)
    assert due.astimezone(CHICAGO_OFFICE.zone).utcoffset() == timedelta(hours=-5)  # CDT


def test_a_calendar_needs_a_working_day_and_a_real_day():
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", frozenset(), time(9), time(17))
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", frozenset({0}), time(17), time(9))
    with pytest.raises(ValueError):
        business_due(datetime(2026, 1, 1, tzinfo=UTC), 0, CHICAGO_OFFICE)


def test_a_working_window_that_ends_inside_the_spring_forward_gap():
    # Chicago, Sundays 00:00-02:00: on 2026-03-08 02:00 does not exist (clocks
    # jump to 03:00), so that Sunday has 2 real hours, and 4.01 hours from
    # the Sunday before run into the Sunday after.
    calendar = BusinessCalendar("America/Chicago", frozenset({6}), time(0), time(2))
    due = business_due(datetime(2026, 3, 1, 0, 0, tzinfo=UTC), Decimal("4.01"), calendar)
    assert calendar.is_open(due)
    assert due.astimezone(calendar.zone).date() == date(2026, 3, 15)
