"""Background work of the leads app. Tasks take ids and call one service."""

from celery import shared_task

from leads import import_services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_run(job_id: int) -> None:
    """Run a CSV import job. Safe to deliver twice or after a worker crash:
    `import_job_run` claims the job conditionally and resumes an interrupted
    one (see its docstring)."""
    import_services.import_job_run(job_id=job_id)
