"""The CSV import pages: upload, map columns and dry run, start, watch, result.

Everyone may read imports (their history, previews and rejected rows);
uploading, mapping and starting need `permissions.can_import` (Marketing and
RevOps admins): others get 403, and the pages say so instead of showing forms.
One URL per page; an htmx request for the job page gets its status fragment,
which polls itself while the job is queued or running.
"""

import csv
import io

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from config.http import is_fragment
from leads import import_selectors as selectors
from leads import import_services as services
from leads import permissions
from leads.import_forms import ImportMappingForm, ImportUploadForm
from leads.importing import (
    FIELDS,
    NATURAL_KEY_HELP,
    ImportFileError,
    ImportMappingError,
    csv_sample,
    fields_for,
    rejected_rows_write,
)
from leads.models import ImportJob

JOBS_PER_PAGE = 25
REJECTED_PER_PAGE = 50
PREVIEW_ERRORS_SHOWN = 50


def _kinds_help() -> list[dict]:
    return [
        {"kind": kind, "label": label, "fields": FIELDS[kind], "key": NATURAL_KEY_HELP[kind]}
        for kind, label in ImportJob.Kind.choices
    ]


def _list_page(request, form):
    page = Paginator(selectors.import_jobs_for_list(), JOBS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "leads/imports/list.html",
        {
            "page": page,
            "form": form,
            "can_import": permissions.can_import(request.user),
            "kinds": _kinds_help(),
        },
    )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def import_list(request):
    """Past imports and the upload form. POST uploads a file (checked at once:
    a bad file is refused in the form, and nothing is stored)."""
    if request.method == "GET":
        return _list_page(request, ImportUploadForm())
    permissions.require(permissions.can_import(request.user), services.NOT_ALLOWED)
    form = ImportUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            job = services.import_job_create(
                kind=form.cleaned_data["kind"],
                uploaded_file=form.cleaned_data["file"],
                actor=request.user,
            )
        except ImportFileError as error:
            form.add_error("file", str(error))
        except services.ImportConflict as conflict:
            form.add_error(
                None,
                format_html(
                    '{} <a href="{}">See import #{}</a>.',
                    str(conflict),
                    conflict.running.get_absolute_url(),
                    conflict.running.pk,
                ),
            )
        else:
            if is_fragment(request):
                return HttpResponseClientRedirect(job.get_absolute_url())
            return redirect(job)
    if is_fragment(request):
        return render(
            request,
            "leads/imports/list.html#upload-form",
            {"form": form, "can_import": True, "kinds": _kinds_help()},
        )
    return _list_page(request, form)


def _job_context(request, job: ImportJob, *, form=None, message="") -> dict:
    status = job.status
    context = {
        "job": job,
        "can_import": permissions.can_import(request.user),
        "fields": fields_for(job.kind),
        "key_help": NATURAL_KEY_HELP[job.kind],
        "message": message,
        "is_mapping": status in (ImportJob.Status.UPLOADED, ImportJob.Status.PREVIEWED),
        "is_previewed": status == ImportJob.Status.PREVIEWED,
        "is_active": status in services.ACTIVE_STATUSES,
        "is_finished": status in (ImportJob.Status.DONE, ImportJob.Status.FAILED),
    }
    columns = services.job_columns(job)
    context["mapping_labels"] = [
        (f.label, columns[f.name]) for f in fields_for(job.kind) if columns.get(f.name)
    ]
    counted = job.created_count + job.updated_count + job.unchanged_count + job.error_count
    context["blank_rows"] = max(0, job.processed_rows - counted)
    if context["is_mapping"]:
        try:
            with job.file.open("rb") as handle:
                sample_rows = csv_sample(handle)
        except (ImportFileError, OSError):
            sample_rows = []
        samples = {h: [row.get(h, "") for row in sample_rows] for h in job.headers}
        context["form"] = form or ImportMappingForm(job=job, samples=samples)
        context["columns"] = [(h, samples[h]) for h in job.headers]
        context["preview_size"] = services.preview_size(job)
    if context["is_previewed"]:
        errors = list(selectors.import_job_row_errors(job=job)[:PREVIEW_ERRORS_SHOWN])
        context["preview_errors"] = _with_reasons(job, errors)
        context["preview_is_sample"] = job.processed_rows < job.total_rows
    if context["is_finished"]:
        context["duration"] = _duration(job)
        page = Paginator(selectors.import_job_row_errors(job=job), REJECTED_PER_PAGE).get_page(
            request.GET.get("page")
        )
        page.object_list = _with_reasons(job, list(page.object_list))
        context["rejected_page"] = page
    return context


def _duration(job: ImportJob) -> str:
    if not (job.started_at and job.finished_at):
        return ""
    seconds = (job.finished_at - job.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


def _with_reasons(job: ImportJob, row_errors: list) -> list:
    labels = {f.name: f.label for f in fields_for(job.kind)}
    for row_error in row_errors:
        row_error.reasons = [
            (labels.get(name, "Row"), " ".join(messages))
            for name, messages in row_error.errors.items()
        ]
        row_error.line = row_error.row_number + 1
    return row_errors


def _job_response(request, job, *, form=None, message=""):
    context = _job_context(request, job, form=form, message=message)
    if is_fragment(request):
        return render(request, "leads/imports/detail.html#job-status", context)
    return render(request, "leads/imports/detail.html", context)


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def import_detail(request, pk):
    """The job's page: by status, the mapping form and dry-run preview, the
    progress bar (the htmx fragment polls this URL every second), or the result."""
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    return _job_response(request, job)


@require_http_methods(["POST"])
@vary_on_headers("HX-Request")
def import_map(request, pk):
    """Save the mapping and options and run the dry run."""
    permissions.require(permissions.can_import(request.user), services.NOT_ALLOWED)
    job = get_object_or_404(ImportJob, pk=pk)
    form = ImportMappingForm(request.POST, job=job)
    if form.is_valid():
        try:
            job = services.import_job_map(
                job=job, mapping=form.mapping(), options=form.options(), actor=request.user
            )
        except ImportMappingError as error:
            form.mapping_errors_add(error.errors)
        except (services.ImportStateError, ImportFileError) as error:
            job.refresh_from_db()
            return _job_response(request, job, message=str(error))
        else:
            if is_fragment(request):
                return _job_response(request, job)
            return redirect(job)
    return _job_response(request, job, form=form)


@require_http_methods(["POST"])
@vary_on_headers("HX-Request")
def import_start(request, pk):
    """Queue the import; the page then shows its progress."""
    permissions.require(permissions.can_import(request.user), services.NOT_ALLOWED)
    job = get_object_or_404(ImportJob, pk=pk)
    try:
        job = services.import_job_start(job=job, actor=request.user)
    except (services.ImportStateError, services.ImportConflict) as error:
        job.refresh_from_db()
        return _job_response(request, job, message=str(error))
    if is_fragment(request):
        return _job_response(request, job)
    return redirect(job)


def _csv_response(content: str, filename: str) -> HttpResponse:
    # A byte-order mark, so spreadsheet programs read the file as UTF-8.
    response = HttpResponse("\ufeff" + content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_http_methods(["GET"])
def import_rejected_csv(request, pk):
    """The rejected rows as CSV: the file's columns plus `errors`, ready to fix
    and upload again. Cells are neutralised against formula injection."""
    job = get_object_or_404(ImportJob, pk=pk)
    out = io.StringIO()
    rejected_rows_write(
        out,
        kind=job.kind,
        headers=job.headers,
        row_errors=selectors.import_job_row_errors(job=job).iterator(chunk_size=2_000),
    )
    stem = job.original_name.rsplit(".", 1)[0] or "import"
    safe_stem = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem)[:80]
    return _csv_response(out.getvalue(), f"{safe_stem}-rejected.csv")


@require_http_methods(["GET"])
def import_template_csv(request, kind):
    """An empty CSV with one column per importable field of `kind`."""
    if kind not in FIELDS:
        raise Http404("No such kind of import.")
    out = io.StringIO()
    csv.writer(out).writerow([f.name for f in FIELDS[kind]])
    return _csv_response(out.getvalue(), f"accord-{kind}-template.csv")
