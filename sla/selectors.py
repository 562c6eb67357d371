from sla.models import Notification


def notifications_unread_count(*, user) -> int:
    return Notification.objects.for_user(user).unread().count()


def notifications_for(*, user, limit: int | None = None):
    notifications = Notification.objects.for_user(user)
    return notifications[:limit] if limit else notifications


def lead_latest_evaluation(lead):
    """The lead's most recent score evaluation, with its versions and persona."""
    from sla.models import ScoreEvaluation

    return (
        ScoreEvaluation.objects.select_related("sla_version", "icp_version", "persona")
        .filter(lead=lead)
        .order_by("-evaluated_at")
        .first()
    )


def marketing_commitments(*, today=None) -> dict | None:
    """Marketing's side of the SLA in force, this month so far: MQLs delivered
    against the monthly commitment (with the pace to month end: the month's
    volume if days keep their average), and the share of MQLs sales accepted
    (accepted / (accepted + rejected)) against the minimum acceptance rate.

    Counts are the shared dashboard's own (reporting.kpis.stage_flow_totals
    for this month: a lead that qualifies again counts again), read from the
    stage-flow rollups as of their last refresh, so a page caching figures
    serves them from its cache. One query, none when cached."""
    import calendar

    from django.utils import timezone

    from reporting import kpis
    from reporting.periods import ReportFilter, period_for
    from sla.versions import sla_in_force

    sla = sla_in_force()
    if sla is None:
        return None
    today = today or timezone.localdate()
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    counts = kpis.stage_flow_totals(ReportFilter(period=period_for("month", today=today)))["cur"]
    decided = counts["accepted"] + counts["rejected"]
    acceptance = round(100 * counts["accepted"] / decided) if decided else None
    pace = round(counts["mqls"] * days_in_month / today.day)
    return {
        "sla": sla,
        "month": today.replace(day=1),
        "mqls": counts["mqls"],
        "commitment": sla.mql_commitment_per_month,
        "pace": pace,
        "on_pace": pace >= sla.mql_commitment_per_month,
        "accepted": counts["accepted"],
        "rejected": counts["rejected"],
        "acceptance_rate": acceptance,
        "acceptance_target": sla.min_acceptance_rate,
        "acceptance_ok": acceptance is None or acceptance >= sla.min_acceptance_rate,
    }
