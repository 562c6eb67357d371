"""Import jobs: every write that moves a CSV upload from upload to result.

uploaded --import_job_map--> previewed --import_job_start--> queued
    --import_run task (import_job_run)--> running --> done | failed

The engine (`leads.importing`) does the importing; these services keep the
job's record: its file, mapping and options, dry-run preview, progress,
counts, rejected rows and look-alike notices (rows that create an account
looking like another: `notice_count` of them, the first NOTICES_KEPT in
`notices`; they are not rejections and stay out of the rejected rows).
"""

import hashlib
import itertools
import logging
from contextlib import contextmanager
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.queue import enqueue_on_commit
from leads import permissions
from leads.importing import (
    NOTICES_KEPT,
    CsvTable,
    ImportFileError,
    ImportMappingError,
    ImportOptions,
    ImportResult,
    RowNotice,
    csv_bytes_read,
    csv_open,
    fields_for,
    mapping_check,
    mapping_suggest,
    rows_import,
)
from leads.models import ImportJob, ImportRowError

logger = logging.getLogger(__name__)

# Files up to this many rows get a dry run of every row; bigger ones of a sample.
PREVIEW_ALL_ROWS_UP_TO = 5_000
PREVIEW_SAMPLE_ROWS = 1_000
ACTIVE_STATUSES = (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)
_ADVISORY_LOCK_CLASS = 0x1417  # pg_advisory_lock(class, job id): one runner per job

NOT_ALLOWED = "Only Marketing and RevOps admins can import CSV files."


class ImportStateError(Exception):
    """The job is not in a state that allows this step (e.g. already started)."""


class ImportConflict(Exception):
    """The same file (same SHA-256 and kind) is already being imported."""

    def __init__(self, running: ImportJob):
        super().__init__(
            f"This file is already being imported (import #{running.pk}, "
            f"{running.get_status_display().lower()}); wait for it to finish."
        )
        self.running = running


def job_columns(job: ImportJob) -> dict[str, str]:
    """The job's {field: column} mapping, without its options."""
    return {k: v for k, v in (job.mapping or {}).items() if v}


def job_options(job: ImportJob) -> ImportOptions:
    return ImportOptions.from_json(job.options)


def job_table(job: ImportJob) -> CsvTable:
    with job.file.open("rb") as handle:
        return csv_open(handle)


def preview_size(job: ImportJob) -> int:
    """How many rows the dry run covers: all of a small file, else a sample."""
    return job.total_rows if job.total_rows <= PREVIEW_ALL_ROWS_UP_TO else PREVIEW_SAMPLE_ROWS


def _running_duplicate(*, kind: str, sha256: str, exclude_pk=None) -> ImportJob | None:
    jobs = ImportJob.objects.filter(kind=kind, file_sha256=sha256, status__in=ACTIVE_STATUSES)
    if exclude_pk is not None:
        jobs = jobs.exclude(pk=exclude_pk)
    return jobs.order_by("created_at").first()


def _file_lock(sha256: str) -> None:
    """Serialise starts of the same file until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"import:{sha256}"])


@transaction.atomic
def import_job_create(*, kind: str, uploaded_file, actor) -> ImportJob:
    """Check an uploaded CSV file and record it as an import job, with the
    mapping suggested from its header. Reads the whole file (ImportFileError
    if it is not a usable CSV: nothing is stored then). Refuses a file that is
    being imported right now (ImportConflict)."""
    permissions.require(permissions.can_import(actor), NOT_ALLOWED)
    fields_for(kind)
    data = csv_bytes_read(uploaded_file)
    table = csv_open(data)
    sha256 = hashlib.sha256(data).hexdigest()
    _file_lock(sha256)
    running = _running_duplicate(kind=kind, sha256=sha256)
    if running is not None:
        raise ImportConflict(running)
    name = Path(getattr(uploaded_file, "name", "") or "import.csv").name[:255]
    job = ImportJob(
        kind=kind,
        original_name=name,
        file_sha256=sha256,
        headers=table.headers,
        total_rows=table.row_count,
        options=ImportOptions().to_json(),
        mapping={
            **mapping_suggest(kind, table.headers),
        },
        created_by=actor,
    )
    job.file.save(name, ContentFile(data), save=False)
    job.save()
    return job


def import_job_map(*, job: ImportJob, mapping: dict, options: ImportOptions, actor) -> ImportJob:
    """Save the column mapping and options, and run the dry run: every row of
    a file up to PREVIEW_ALL_ROWS_UP_TO rows, else the first
    PREVIEW_SAMPLE_ROWS. Stores what the rows would do (the job's counts,
    `processed_rows` = rows previewed), their errors and look-alike notices.
    Writes no records.
    Allowed while the job is uploaded or previewed (ImportStateError
    otherwise); ImportMappingError for a mapping that cannot work."""
    permissions.require(permissions.can_import(actor), NOT_ALLOWED)
    mapping = {name: column for name, column in mapping.items() if column}
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.PREVIEWED):
            raise ImportStateError("This import has already started; its mapping cannot change.")
        mapping_check(job.kind, mapping, job.headers)
        table = job_table(job)
        result = rows_import(
            kind=job.kind,
            rows=itertools.islice(table.rows(), preview_size(job)),
            mapping=mapping,
            actor=actor,
            dry_run=True,
            options=options,
        )
        job.row_errors.all().delete()
        _row_errors_store(job.pk, result)
        job.mapping = mapping
        job.options = options.to_json()
        job.status = ImportJob.Status.PREVIEWED
        job.processed_rows = result.rows
        job.created_count = result.created
        job.updated_count = result.updated
        job.unchanged_count = result.unchanged
        job.error_count = result.error_count
        job.notice_count = result.notice_count
        job.notices = _notices_json(result.notices)
        job.failure = ""
        job.save()
    return job


@transaction.atomic
def import_job_start(*, job: ImportJob, actor) -> ImportJob:
    """previewed -> queued, and enqueue the import after commit. The preview's
    counts, errors and notices are cleared (the import records its own).
    Refuses (ImportConflict) while the same file is being imported by another
    job; ImportStateError unless previewed."""
    permissions.require(permissions.can_import(actor), NOT_ALLOWED)
    from leads.tasks import import_run

    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != ImportJob.Status.PREVIEWED:
        raise ImportStateError(
            "Run the dry run first." if job.status == ImportJob.Status.UPLOADED else
            f"This import is already {job.get_status_display().lower()}."
        )  # fmt: skip
    _file_lock(job.file_sha256)
    running = _running_duplicate(kind=job.kind, sha256=job.file_sha256, exclude_pk=job.pk)
    if running is not None:
        raise ImportConflict(running)
    job.row_errors.all().delete()
    job.status = ImportJob.Status.QUEUED
    job.processed_rows = job.created_count = job.updated_count = 0
    job.unchanged_count = job.error_count = job.notice_count = 0
    job.notices = []
    job.failure = ""
    job.started_at = job.finished_at = None
    job.save()
    enqueue_on_commit(import_run, job.pk)
    return job


@contextmanager
def _runner_lock(job_id: int):
    """A session-level advisory lock: held by one runner of the job at a time,
    released at the end, or by PostgreSQL when a crashed worker's connection
    goes away. Yields whether this runner got it."""
    key = (_ADVISORY_LOCK_CLASS, job_id % 2**31)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def import_job_run(*, job_id: int) -> None:
    """Run a queued import (the `import_run` task's body).

    Idempotent and safe to re-deliver: one runner at a time holds the job's
    advisory lock (another one returns at once); a queued job is claimed with
    a conditional update (queued -> running); a job found `running` with no
    runner holding the lock was interrupted (worker crash) and is resumed
    after its `processed_rows`, which commit in the same transaction as each
    batch's records. Jobs that are done, failed or not started are left alone.
    Rows upsert by natural key, so even a full re-run would not double-create.
    """
    with _runner_lock(job_id) as acquired:
        if not acquired:
            logger.info("Import %s is being run by another worker.", job_id)
            return
        now = timezone.now()
        claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
            status=ImportJob.Status.RUNNING, started_at=now
        )
        job = ImportJob.objects.filter(pk=job_id).select_related("created_by").first()
        if job is None or (not claimed and job.status != ImportJob.Status.RUNNING):
            return
        if not claimed:
            logger.warning(
                "Resuming interrupted import %s after row %s.", job_id, job.processed_rows
            )
        try:
            table = job_table(job)
            rows_import(
                kind=job.kind,
                rows=table.rows(),
                mapping=job_columns(job),
                actor=job.created_by,
                options=job_options(job),
                skip_rows=job.processed_rows,
                on_progress=lambda batch: _progress_record(job_id, batch),
            )
        except (ImportFileError, ImportMappingError) as error:
            _job_fail(job_id, str(error))
            return
        except Exception as error:
            logger.exception("Import %s failed.", job_id)
            _job_fail(
                job_id,
                f"The import stopped unexpectedly ({type(error).__name__}: {error}). The rows "
                "imported before it are kept; importing the file again finishes the job "
                "(rows already imported count as unchanged).",
            )
            return
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING).update(
            status=ImportJob.Status.DONE, finished_at=timezone.now()
        )


def _progress_record(job_id: int, batch: ImportResult) -> None:
    """Add a batch's counts, rejected rows and notices to the job. Runs inside
    the batch's transaction, so progress and records commit together."""
    ImportJob.objects.filter(pk=job_id).update(
        processed_rows=F("processed_rows") + batch.rows,
        created_count=F("created_count") + batch.created,
        updated_count=F("updated_count") + batch.updated,
        unchanged_count=F("unchanged_count") + batch.unchanged,
        error_count=F("error_count") + batch.error_count,
        notice_count=F("notice_count") + batch.notice_count,
    )
    _row_errors_store(job_id, batch)
    if batch.notices:
        _notices_append(job_id, batch.notices)


def _notices_json(notices: list[RowNotice]) -> list[dict]:
    return [notice.to_json() for notice in notices[:NOTICES_KEPT]]


def _notices_append(job_id: int, notices: list[RowNotice]) -> None:
    """Keep a batch's notices on the job while it holds fewer than
    NOTICES_KEPT. A read and a write in the batch's transaction: safe, as the
    job's one runner (see import_job_run) is the only writer."""
    kept = ImportJob.objects.filter(pk=job_id).values_list("notices", flat=True).get()
    room = NOTICES_KEPT - len(kept)
    if room > 0:
        ImportJob.objects.filter(pk=job_id).update(notices=kept + _notices_json(notices[:room]))


def _row_errors_store(job_id: int, result: ImportResult) -> None:
    ImportRowError.objects.bulk_create(
        [
            ImportRowError(job_id=job_id, row_number=e.row_number, values=e.values, errors=e.errors)
            for e in result.errors
        ],
        batch_size=1_000,
        ignore_conflicts=True,
    )


def _job_fail(job_id: int, failure: str) -> None:
    ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING).update(
        status=ImportJob.Status.FAILED, failure=failure, finished_at=timezone.now()
    )
