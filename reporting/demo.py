"""The demo's closed-loop reporting: shared goals for this quarter, the last
quarter's recorded improvement, the reporting tables computed from the
demo's data (a full rebuild), and the default views' figures cached.
Idempotent."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from reporting.models import GoalMetric, QuarterlyReview, SharedGoal
from reporting.periods import add_months, quarter_start
from reporting.rollups import reporting_rebuild
from reporting.services import figures_warm

GOALS = (
    # title, metric, target, note
    ("$2M sales-accepted pipeline from marketing-sourced leads this quarter",
     GoalMetric.SOURCED_PIPELINE, Decimal(2_000_000),
     "Marketing sources it, sales accepts and qualifies it: only opportunities count."),
    ("Sales accepts 75% of MQLs", GoalMetric.ACCEPTANCE_RATE, Decimal(75),
     "Above the SLA's 70% minimum: fewer MQLs sent back as “no timing”."),
    ("9 in 10 MQLs contacted within the SLA", GoalMetric.RESPONSE_WITHIN_SLA, Decimal(90),
     "Hand-raisers within the hour, everyone else within a business day."),
    ("600 MQLs this quarter", GoalMetric.MQLS, Decimal(600),
     "The SLA's 180 a month, with a margin for the events season."),
)  # fmt: skip


def reporting_load(*, stdout=None) -> None:
    """Compute the reporting tables and seed this quarter's shared goals."""
    today = timezone.localdate()
    start = quarter_start(today)
    end = add_months(start, 3) - timedelta(days=1)
    User = get_user_model()
    marketing = User.objects.filter(username="marketing").first()
    manager = User.objects.filter(username="manager").first()
    for title, metric, target, note in GOALS:
        SharedGoal.objects.get_or_create(
            title=title,
            defaults={"metric": metric, "target": target, "starts_on": start, "ends_on": end,
                      "note": note, "created_by": marketing},
        )  # fmt: skip
    QuarterlyReview.objects.get_or_create(
        quarter_start=add_months(start, -6),
        defaults={
            "improvement": "Answer hand-raisers within one business hour, and tell the manager "
            "when we do not (SLA v2).",
            "improvement_owner": "Dustin Brinkmann (sales) and Mia Marketer (marketing)",
            "notes": "Deals answered within the hour were won far more often; v2 of the SLA "
            "writes the one-hour response and the escalation down.",
            "recorded_by": manager,
        },
    )
    result = reporting_rebuild(stdout=stdout)
    figures_warm()
    if stdout:
        stdout.write(
            f"  reporting: {result.opportunities} deals attributed ({result.credit_rows} credit "
            f"rows), {result.leads} lead funnels, in {result.seconds:.0f} s"
        )
