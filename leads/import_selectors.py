"""Reads for the CSV import pages."""

from django.db.models import QuerySet

from leads.models import ImportJob, ImportRowError


def import_jobs_for_list() -> QuerySet[ImportJob]:
    """Import jobs, newest first, with who uploaded them."""
    return ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")


def import_job_row_errors(*, job: ImportJob) -> QuerySet[ImportRowError]:
    """The job's rejected rows (or, before it runs, its dry run's), in file order."""
    return ImportRowError.objects.filter(job=job).order_by("row_number")
