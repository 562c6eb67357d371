"""Reads of shared goals: which goals a period shows, and each goal's
progress, computed with the dashboard's own definitions (reporting.kpis)."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils import timezone

from reporting import kpis
from reporting.models import SharedGoal
from reporting.periods import Period, ReportFilter, range_label

DASHBOARD_GOALS = 6  # goals the dashboard shows with their progress


@dataclass
class GoalProgress:
    goal: SharedGoal
    actual: object
    unit: str
    percent: float | None  # actual ÷ target
    expected_percent: float | None  # where a steady pace would be by now
    status: str  # met, on_track, behind, missed, upcoming

    @property
    def status_label(self) -> str:
        return {
            "met": "Met",
            "on_track": "On track",
            "behind": "Behind",
            "missed": "Missed",
            "upcoming": "Not started",
        }[self.status]

    @property
    def badge(self) -> str:
        return {
            "met": "badge-ok",
            "on_track": "badge-ok",
            "behind": "badge-warn",
            "missed": "badge-bad",
            "upcoming": "",
        }[self.status]

    @property
    def meter_max(self) -> float:
        return max(100.0, self.percent or 0)


def goal_filter(goal: SharedGoal, *, today: date) -> ReportFilter:
    """The goal's period (to today while it runs), segment and team."""
    end = min(goal.ends_on, max(today, goal.starts_on))
    period = Period("custom", goal.starts_on, end, range_label(goal.starts_on, goal.ends_on))
    return ReportFilter(period=period, segment=goal.segment, team=goal.team)


def goal_progress(goal: SharedGoal, *, today: date | None = None) -> GoalProgress:
    """The goal's actual value so far and whether it is on pace. Cumulative
    metrics (amounts, counts) are on track when the share of the target
    reached is at least the share of the period gone; rates when they are
    at or above the target. One or two queries."""
    today = today or timezone.localdate()
    unit = kpis.metric_unit(goal.metric)
    if today < goal.starts_on:
        return GoalProgress(goal, None, unit, None, 0.0, "upcoming")
    actual = kpis.metric_value(goal.metric, goal_filter(goal, today=today))
    target = Decimal(goal.target)
    percent = None if actual is None else float(Decimal(str(actual)) / target * 100)
    total_days = (goal.ends_on - goal.starts_on).days + 1
    elapsed = min(total_days, (today - goal.starts_on).days + 1)
    expected = 100.0 * elapsed / total_days if unit != "percent" else 100.0
    reached = percent is not None and percent >= 100
    if today > goal.ends_on:
        status = "met" if reached else "missed"
    elif reached and unit != "percent":
        status = "met"
    elif percent is not None and percent >= expected:
        status = "on_track"
    else:
        status = "behind"
    return GoalProgress(goal, actual, unit, percent, expected, status)


def goals_overlapping(period: Period, *, limit: int | None = None):
    goals = SharedGoal.objects.select_related("team", "created_by").filter(
        starts_on__lte=period.end, ends_on__gte=period.start
    )
    return list(goals[:limit] if limit else goals)


def goals_progress(goals, *, today: date | None = None) -> list[GoalProgress]:
    """Progress of each goal: at most two queries per goal (pages show a
    bounded number of goals)."""
    return [goal_progress(goal, today=today) for goal in goals]
