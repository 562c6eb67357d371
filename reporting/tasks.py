"""Background work of the reporting app: keeping the reporting tables current.
Beat only enqueues; both tasks are safe to run twice (see reporting.rollups)."""

from celery import shared_task

from reporting import rollups


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def reporting_refresh_run() -> None:
    """Apply pending changes to the reporting tables. Each batch is applied
    and its pending rows deleted in one transaction, so a redelivered or
    concurrent run applies nothing twice; a run that finds another running
    returns at once."""
    rollups.reporting_refresh()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def reporting_rebuild_run() -> None:
    """Recompute the reporting tables from scratch (nightly): picks up what
    incremental counting keeps as it was (a lead's later change of segment or
    owner, deleted leads). Idempotent."""
    rollups.reporting_rebuild()
