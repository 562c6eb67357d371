"""Background work of the reporting app: keeping the reporting tables current,
and the default views' figures cached. Beat only enqueues; every task is safe
to run twice (see reporting.rollups and reporting.figure_cache)."""

from celery import shared_task

from config.queue import enqueue_on_commit
from reporting import rollups, services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def reporting_refresh_run() -> None:
    """Apply pending changes to the reporting tables. Each batch is applied
    and its pending rows deleted in one transaction, so a redelivered or
    concurrent run applies nothing twice; a run that finds another running
    returns at once. When the tables changed, warms the default views'
    figures in a follow-up task."""
    if rollups.reporting_refresh().generation_bumped:
        enqueue_on_commit(reporting_figures_warm_run)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def reporting_rebuild_run() -> None:
    """Recompute the reporting tables from scratch (nightly): picks up what
    incremental counting keeps as it was (a lead's later change of segment or
    owner, deleted leads). Idempotent. Then warms the default views' figures."""
    rollups.reporting_rebuild()
    enqueue_on_commit(reporting_figures_warm_run)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def reporting_figures_warm_run() -> None:
    """Cache the default views' figures under the tables' current generation.
    Idempotent: a second run finds them cached."""
    services.figures_warm()
