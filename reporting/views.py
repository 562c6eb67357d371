"""Closed-loop reporting pages: the shared dashboard (also the home page),
attribution, the SLA scorecard, shared goals, the quarterly business review,
the rows behind every figure, and CSV exports of every table.

Function views: parse the filters, read through reporting.kpis /
reporting.selectors, render. Figures read from the derived tables are served
from the cache while those tables stay at the generation the page read with
its "Figures as of …" state (reporting.figure_cache). An htmx request to a
page's URL gets the page's fragment. Everyone reads every page; goals and the QBR record are changed by
sales managers, marketing and RevOps admins (checked here and in services).
"""

import csv
from datetime import date, timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from config import roles
from config.context_processors import nav_sections
from config.http import is_fragment
from config.keyset import keyset_page
from config.models import ServiceHeartbeat
from leads.csv_safety import csv_safe
from reporting import exports, goals, kpis, rollups, selectors, services
from reporting.attribution import DEFAULT_MODELS, MODEL_LABELS
from reporting.charts import Series, funnel_chart, grouped_bar_chart, line_chart
from reporting.figure_cache import figures_cached
from reporting.forms import GoalForm, QuarterlyReviewForm
from reporting.models import QuarterlyReview, SharedGoal
from reporting.periods import (
    Period,
    ReportFilter,
    ReportFilterForm,
    add_months,
    quarter_label,
    quarter_start,
)
from sla.selectors import marketing_commitments

ROWS_PAGE_SIZE = 50


def _filters(request, *, default_period: str = "quarter"):
    form = ReportFilterForm(request.GET or None, initial={"period": default_period})
    return form, form.report_filter(default_period=default_period)


def _query(flt: ReportFilter, **extra) -> str:
    return urlencode({**flt.query(), **extra})


def _freshness() -> dict:
    """When the reporting tables were last brought up to date, and their
    generation, under which the page's derived figures are cached (read
    before any figure). Two queries."""
    return {"state": rollups.refresh_state(), "pending": rollups.pending_count()}


def _cached(freshness: dict):
    """Serve the derived figures read inside from the cache (see the module docstring)."""
    return figures_cached(freshness["state"].figures_tag)


# --- The shared dashboard ---------------------------------------------------------------------


def dashboard_context(flt: ReportFilter, freshness: dict | None = None) -> dict:
    freshness = freshness or _freshness()
    data = kpis.dashboard(flt)
    trend = data["trend"]
    labels = [f"{row['month']:%b %y}" for row in trend]
    charts = {
        "funnel": funnel_chart(
            data["funnel"]["stages"], title=f"Funnel of the leads created in {flt.period.label}"
        ),
        "pipeline": line_chart(
            labels,
            [
                Series("New pipeline", [row["new_pipeline"] for row in trend], "series-0"),
                Series("Marketing-sourced", [row["sourced_pipeline"] for row in trend], "series-1"),
                Series("Won revenue", [row["won_revenue"] for row in trend], "series-2"),
            ],
            title="New pipeline, marketing-sourced pipeline and won revenue by month",
        ),
        "mqls": line_chart(
            labels,
            [Series("Commitment", [row["commitment"] for row in trend], "series-3")],
            bars=Series("MQLs", [row["mqls"] for row in trend], "series-1"),
            title="MQLs by month against marketing's commitment",
            money=False,
        ),
    }
    economics = data["economics"]["cur"]
    chart_channels = [row for row in economics.channels if row.customers or row.spend]
    charts["economics"] = grouped_bar_chart(
        [row.label for row in chart_channels],
        [
            Series("CAC", [row.cac for row in chart_channels], "series-3"),
            Series("LTV", [row.ltv for row in chart_channels], "series-2"),
        ],
        title="CAC and LTV by channel",
    )
    goal_rows = goals.goals_progress(
        goals.goals_overlapping(flt.period, limit=goals.DASHBOARD_GOALS)
    )
    return {
        **data,
        "flt": flt,
        "previous": flt.period.previous(),
        "query": _query(flt),
        "charts": charts,
        "goal_progress": goal_rows,
        "freshness": freshness,
        "definitions": kpis.DEFINITIONS,
    }


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def dashboard(request):
    """The shared dashboard: one set of numbers both teams read, for a
    period and a segment/team, each figure against the previous period and
    linked to its rows."""
    return _dashboard(request, home=False)


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def home(request):
    """The page after login: the shared dashboard, the agreement this month,
    what is due, a way into each area, and (for RevOps admins) whether the
    background services run."""
    return _dashboard(request, home=True)


def _dashboard(request, *, home: bool):
    form, flt = _filters(request)
    freshness = _freshness()
    with _cached(freshness):
        context = {
            "form": form,
            **dashboard_context(flt, freshness),
            "is_home": home,
            "can_manage_goals": services.can_manage_goals(request.user),
        }
        if is_fragment(request):
            return render(request, "reporting/dashboard.html#dashboard-body", context)
        template = "reporting/dashboard.html"
        if home:
            template = "reporting/home.html"
            context["sections"] = nav_sections()
            context["commitments"] = marketing_commitments()
            if roles.has_role(request.user, roles.REVOPS_ADMIN) or request.user.is_superuser:
                context["heartbeats"] = list(ServiceHeartbeat.objects.all())
        return render(request, template, context)


# --- Attribution -------------------------------------------------------------------------------


def _models(request) -> list[str]:
    # model/compare are accepted too (short links, e.g. ?model=linear&compare=w_shaped).
    first = request.GET.get("model_a") or request.GET.get("model") or DEFAULT_MODELS[0]
    second = request.GET.get("model_b") or request.GET.get("compare") or DEFAULT_MODELS[1]
    models = [
        m if m in MODEL_LABELS else default
        for m, default in ((first, DEFAULT_MODELS[0]), (second, DEFAULT_MODELS[1]))
    ]
    return models


def attribution_context(flt: ReportFilter, models: list[str], freshness: dict | None = None):
    freshness = freshness or _freshness()
    data = selectors.attribution(flt, models=models)
    channels = data["channels"][:12]
    chart = grouped_bar_chart(
        [row.label for row in channels],
        [
            Series(MODEL_LABELS[m], [row.pipeline.get(m) for row in channels], f"series-{i}")
            for i, m in enumerate(models)
        ],
        title="Credited pipeline by channel under the two models",
    )
    economics = kpis.economics(flt)["cur"]
    ltv_rows = sorted(
        (row for row in economics.channels if row.customers),
        key=lambda row: -(row.ltv or 0),
    )
    # The seed question "which content assets generate pipeline": the assets
    # with credited pipeline under the first model, most first.
    top_assets = [row for row in data["assets"] if row.key is not None and row.pipeline[models[0]]]
    return {
        **data,
        "flt": flt,
        "top_assets": top_assets[:3],
        "model_keys": models,
        "model_choices": list(MODEL_LABELS.items()),
        "query": _query(flt, model_a=models[0], model_b=models[1]),
        "filter_query": _query(flt),
        "chart": chart,
        "ltv_rows": ltv_rows,
        "economics": economics,
        "freshness": freshness,
    }


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def attribution(request):
    """Credited pipeline and revenue by channel, campaign and content asset
    under two attribution models side by side, with spend and ROI."""
    form, flt = _filters(request)
    freshness = _freshness()
    with _cached(freshness):
        context = {"form": form, **attribution_context(flt, _models(request), freshness)}
        template = "reporting/attribution.html"
        if is_fragment(request):
            template += "#attribution-body"
        return render(request, template, context)


# --- The SLA scorecard ---------------------------------------------------------------------------

SCORECARD_PERIOD = "year"  # the scorecard's default period


def scorecard_context(flt: ReportFilter, freshness: dict | None = None) -> dict:
    freshness = freshness or _freshness()
    return {
        "flt": flt,
        "versions": selectors.scorecard_by_version(flt.period, team=flt.team, segment=flt.segment),
        "people": selectors.scorecard_by_rep(flt.period, team=flt.team, segment=flt.segment),
        "query": _query(flt),
        "freshness": freshness,
    }


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def scorecard(request):
    """Both sides of the agreement per SLA version and month, and per team
    and rep: marketing's MQL volume and acceptance rate against its
    commitments, sales' response within SLA, breaches, escalations and
    feedback."""
    form, flt = _filters(request, default_period=SCORECARD_PERIOD)
    freshness = _freshness()
    with _cached(freshness):
        context = {"form": form, **scorecard_context(flt, freshness)}
        template = "reporting/scorecard.html"
        if is_fragment(request):
            template += "#scorecard-body"
        return render(request, template, context)


# --- Shared goals ---------------------------------------------------------------------------------


@require_http_methods(["GET"])
def goal_list(request):
    today = timezone.localdate()
    all_goals = list(SharedGoal.objects.select_related("team", "created_by"))
    current = [g for g in all_goals if g.ends_on >= today]
    past = [g for g in all_goals if g.ends_on < today][:20]
    return render(
        request,
        "reporting/goal_list.html",
        {
            "current": goals.goals_progress(current, today=today),
            "past": goals.goals_progress(past, today=today),
            "can_manage": services.can_manage_goals(request.user),
        },
    )


@require_http_methods(["GET"])
def goal_detail(request, pk):
    goal = get_object_or_404(SharedGoal.objects.select_related("team", "created_by"), pk=pk)
    progress = goals.goal_progress(goal)
    flt = goals.goal_filter(goal, today=timezone.localdate())
    return render(
        request,
        "reporting/goal_detail.html",
        {
            "progress": progress,
            "goal": goal,
            "query": _query(flt),
            "rows_figure": GOAL_ROWS.get(goal.metric, ""),
            "can_manage": services.can_manage_goals(request.user),
        },
    )


GOAL_ROWS = {
    "sourced_pipeline": "sourced_pipeline",
    "new_pipeline": "new_pipeline",
    "won_revenue": "won_revenue",
    "influenced_revenue": "influenced_revenue",
    "mqls": "mqls",
    "acceptance_rate": "acceptance_rate",
    "response_within_sla": "first_contact",
    "win_rate": "win_rate",
    "new_customers": "new_customers",
    "opportunities": "new_pipeline",
}


def _require_goal_manager(user):
    if not services.can_manage_goals(user):
        raise PermissionDenied(
            "Shared goals are set by sales managers, marketing and RevOps admins."
        )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def goal_create(request):
    _require_goal_manager(request.user)
    initial = {}
    if request.method == "GET":
        start = quarter_start(timezone.localdate())
        initial = {"starts_on": start, "ends_on": add_months(start, 3) - timedelta(days=1)}
    form = GoalForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        goal = services.goal_create(actor=request.user, **form.cleaned_data)
        messages.success(request, f"Goal “{goal}” created; its progress shows on the dashboard.")
        return redirect(goal)
    template = "reporting/goal_form.html"
    if is_fragment(request):
        template += "#goal-form"
    return render(request, template, {"form": form, "goal": None})


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def goal_edit(request, pk):
    goal = get_object_or_404(SharedGoal, pk=pk)
    _require_goal_manager(request.user)
    form = GoalForm(request.POST or None, instance=goal)
    if request.method == "POST" and form.is_valid():
        services.goal_update(goal=goal, actor=request.user, **form.cleaned_data)
        messages.success(request, "Goal saved.")
        return redirect(goal)
    template = "reporting/goal_form.html"
    if is_fragment(request):
        template += "#goal-form"
    return render(request, template, {"form": form, "goal": goal})


@require_http_methods(["POST"])
def goal_delete(request, pk):
    goal = get_object_or_404(SharedGoal, pk=pk)
    _require_goal_manager(request.user)
    services.goal_delete(goal=goal, actor=request.user)
    messages.success(request, f"Goal “{goal.title}” deleted.")
    return redirect("reporting:goal_list")


# --- The quarterly business review ---------------------------------------------------------------


def quarter_period(year: int, quarter: int, *, today: date | None = None) -> Period:
    if not 1 <= quarter <= 4 or not 2000 <= year <= 2100:
        raise Http404("No such quarter.")
    start = date(year, 3 * (quarter - 1) + 1, 1)
    end = add_months(start, 3) - timedelta(days=1)
    return Period("last_quarter", start, end, quarter_label(start))


def qbr_context(period: Period, *, today: date | None = None, freshness: dict | None = None):
    from reporting import winloss_selectors

    freshness = freshness or _freshness()
    today = today or timezone.localdate()
    flt = ReportFilter(period=period)
    previous = period.previous()
    data = kpis.dashboard(flt)
    previous_review = QuarterlyReview.objects.filter(quarter_start=previous.start).first()
    review = QuarterlyReview.objects.filter(quarter_start=period.start).first()
    quarter_goals = goals.goals_progress(
        goals.goals_overlapping(period), today=min(today, period.end)
    )
    return {
        "period": period,
        "previous": previous,
        "figures": data["figure_list"],
        "data": data,
        "sla_rows": selectors.scorecard_by_version(period, today=today),
        "themes": winloss_selectors.winloss_themes(start=period.start, end=period.end),
        "coverage": winloss_selectors.coverage(start=period.start, end=period.end, today=today),
        "actions": list(winloss_selectors.action_items_open()[:50]),
        "goal_progress": quarter_goals,
        "review": review,
        "previous_review": previous_review,
        "query": _query(flt),
        "is_current": period.start <= today <= period.end,
        "quarter_param": f"{period.start.year}-q{(period.start.month - 1) // 3 + 1}",
        "next_url": _qbr_url(add_months(period.start, 3)),
        "previous_url": _qbr_url(previous.start),
        "freshness": freshness,
    }


def _qbr_url(start: date) -> str:
    return reverse("reporting:qbr", args=[start.year, (start.month - 1) // 3 + 1])


@require_http_methods(["GET"])
def qbr_current(request):
    """The QBR of the quarter that just ended (the one to review)."""
    start = add_months(quarter_start(timezone.localdate()), -3)
    return redirect(_qbr_url(start))


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def qbr(request, year, quarter):
    """One quarter's business review: SLA performance per version, the KPIs
    against the previous quarter, win/loss themes, goal attainment, open
    action items, and the one improvement both teams commit to next. Prints
    cleanly."""
    period = quarter_period(year, quarter)
    review = QuarterlyReview.objects.filter(quarter_start=period.start).first()
    can_record = services.can_manage_goals(request.user)
    form = QuarterlyReviewForm(request.POST or None, instance=review)
    if request.method == "POST":
        if not can_record:
            raise PermissionDenied("The QBR record is kept by managers, marketing and RevOps.")
        if form.is_valid():
            review = services.quarterly_review_record(
                quarter_start=period.start, actor=request.user, **form.cleaned_data
            )
            if not is_fragment(request):
                messages.success(request, "The improvement for next quarter is recorded.")
                return redirect(_qbr_url(period.start))
            form = QuarterlyReviewForm(instance=review)
        if is_fragment(request):
            context = {
                "form": form,
                "review": review,
                "period": period,
                "can_record": True,
                "saved": form.instance.pk is not None and not form.errors,
            }
            return render(request, "reporting/qbr.html#qbr-record", context)
    freshness = _freshness()
    with _cached(freshness):
        context = {**qbr_context(period, freshness=freshness), "form": form,
                   "can_record": can_record}  # fmt: skip
        return render(request, "reporting/qbr.html", context)


# --- Rows behind a figure ---------------------------------------------------------------------------

ROW_PARAMS = ("model", "kind", "channel", "campaign", "asset", "stage")


def _row_params(request) -> dict:
    return {key: request.GET[key] for key in ROW_PARAMS if key in request.GET}


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def figure_rows(request, figure):
    """The rows a figure counts, under the same filters, paged by keyset."""
    form, flt = _filters(request)
    params = _row_params(request)
    spec = selectors.figure_rows(figure, flt, params)
    if spec is None:
        raise Http404("No such figure.")
    page = keyset_page(
        spec.queryset,
        keys=spec.keys,
        descending=True,
        size=ROWS_PAGE_SIZE,
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
    )
    query = _query(flt, **params)
    context = {
        "form": form,
        "flt": flt,
        "figure": figure,
        "spec": spec,
        "page": page,
        "rows": [
            [
                (column, column.value(item), column.link(item) if column.link else "")
                for column in spec.columns
            ]
            for item in page.items
        ],
        "query": query,
        "back_query": _query(flt),
        "row_params": params,
        "export_url": reverse("reporting:rows_export", args=[figure]) + f"?{query}",
    }
    template = "reporting/rows.html"
    if is_fragment(request):
        template += "#rows-body"
    return render(request, template, context)


@require_http_methods(["GET"])
def figure_rows_export(request, figure):
    """Every row behind a figure as CSV, streamed (formula-safe cells)."""
    _, flt = _filters(request)
    spec = selectors.figure_rows(figure, flt, _row_params(request))
    if spec is None:
        raise Http404("No such figure.")
    order = [f"-{key}" for key in spec.keys]

    def lines():
        writer = csv.writer(exports.Echo())
        yield writer.writerow([column.label for column in spec.columns])
        for item in spec.queryset.order_by(*order).iterator(chunk_size=2000):
            yield writer.writerow(
                csv_safe([exports.csv_value(column.value(item)) for column in spec.columns])
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="accord-{figure}-{flt.period.start}-{flt.period.end}.csv"'
    )
    return response


# --- CSV exports of the pages' tables -----------------------------------------------------------


def _export_tables(request, page: str, flt: ReportFilter, freshness: dict) -> dict:
    if page == "dashboard":
        return exports.dashboard_tables(dashboard_context(flt, freshness))
    if page == "attribution":
        return exports.attribution_tables(attribution_context(flt, _models(request), freshness))
    if page == "scorecard":
        return exports.scorecard_tables(scorecard_context(flt, freshness))
    if page == "goals":
        all_goals = SharedGoal.objects.select_related("team")
        return exports.goal_tables(goals.goals_progress(list(all_goals)))
    if page == "qbr":
        start = request.GET.get("quarter", "")
        try:
            year, number = (int(part) for part in start.split("-q"))
        except ValueError as error:
            raise Http404("Say which quarter: ?quarter=2026-q3.") from error
        return exports.qbr_tables(qbr_context(quarter_period(year, number), freshness=freshness))
    raise Http404("No such page.")


@require_http_methods(["GET"])
def export(request, page):
    """One table of a reporting page as CSV: ?table=<key> (default: the
    page's first) with the page's filters."""
    default_period = SCORECARD_PERIOD if page == "scorecard" else "quarter"
    _, flt = _filters(request, default_period=default_period)
    freshness = _freshness()
    with _cached(freshness):
        tables = _export_tables(request, page, flt, freshness)
    key = request.GET.get("table") or next(iter(tables))  # default: the page's first table
    if key not in tables:
        raise Http404(f"No table “{key}” on this page.")
    table = tables[key]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    writer = csv.writer(response)
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(csv_safe([exports.csv_value(value) for value in row]))
    response["Content-Disposition"] = (
        f'attachment; filename="accord-{page}-{key}-{flt.period.start}-{flt.period.end}.csv"'
    )
    return response
