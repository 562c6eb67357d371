"""Win/loss pages: the retrospectives, the reviews due, one retrospective
with the deal's story beside it (drivers and action items edited in place),
the action items, and the insights.

Function views: parse, check who may act, call one service, render. An htmx
request to a page's URL gets the page's fragment; every action also works as
a plain form post without JavaScript.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from config.http import is_fragment
from leads.models import Opportunity, OpportunityStage
from leads.selectors import opportunity_story
from reporting import winloss_forms as forms
from reporting import winloss_selectors as selectors
from reporting import winloss_services as services
from reporting.models import ActionItem, DecisionDriver, Retrospective

PAGE_SIZE = 25
# The detail page's fragments an htmx request may ask for with ?section=.
DETAIL_SECTIONS = ("retro-main", "retro-summary", "drivers", "action-items")


def _require_editor(request) -> None:
    if not services.can_edit_retrospectives(request.user):
        raise PermissionDenied("Only marketing, sales and RevOps take part in retrospectives.")


def _template(request, page: str, fragment: str) -> str:
    return f"reporting/winloss/{page}.html" + (f"#{fragment}" if is_fragment(request) else "")


def _query_without(request, *keys) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    return query.urlencode()


# --- Lists ---------------------------------------------------------------------------------


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def retrospective_list(request):
    """Every retrospective, filtered (filters live in the URL), and the
    reviews due."""
    form = forms.RetrospectiveFilterForm(request.GET or None)
    rows = selectors.retrospectives_filtered(**form.selector_kwargs())
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "query": _query_without(request, "page"),
        "can_edit": services.can_edit_retrospectives(request.user),
    }
    if not is_fragment(request):
        due = selectors.reviews_due()
        context["due"] = list(due[:5])
        context["due_count"] = due.count()
        context["rule"] = selectors.review_rule()
        context["lookback_days"] = selectors.REVIEW_LOOKBACK_DAYS
    return render(request, _template(request, "list", "retro-results"), context)


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def reviews_due(request):
    """Closed deals above the SLA's threshold that still need a retrospective."""
    mine = request.GET.get("mine") == "1"
    deals = selectors.reviews_due(owner=request.user if mine else None)
    page = Paginator(deals, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "mine": mine,
        "rule": selectors.review_rule(),
        "lookback_days": selectors.REVIEW_LOOKBACK_DAYS,
        "today": timezone.localdate(),
        "query": _query_without(request, "page"),
        "can_edit": services.can_edit_retrospectives(request.user),
    }
    return render(request, _template(request, "due", "due-results"), context)


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def action_item_list(request):
    """Action items of every retrospective (open ones by default)."""
    form = forms.ActionItemFilterForm(request.GET or None)
    items = selectors.action_items_filtered(**form.selector_kwargs(request.user)).order_by(
        "due_on", "id"
    )
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "query": _query_without(request, "page"),
        "today": timezone.localdate(),
    }
    return render(request, _template(request, "actions", "action-results"), context)


# --- Starting a retrospective ----------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def retrospective_create(request):
    """Pick a closed deal (or come from its page with ?opportunity=), then
    record the retrospective beside the deal's story."""
    _require_editor(request)
    opportunity_id = request.POST.get("opportunity") or request.GET.get("opportunity")
    if not (opportunity_id or "").isdigit():
        search = forms.DealSearchForm(request.GET or None)
        q = search.cleaned_data.get("q", "") if search.is_valid() else ""
        return render(
            request,
            "reporting/winloss/new.html",
            {"search": search, "deals": selectors.closed_deals_to_review(q=q), "q": q},
        )
    opportunity = get_object_or_404(
        Opportunity.objects.select_related(
            "account", "owner", "product", "source_lead__source_campaign", "competitor",
            "loss_reason",
        ),
        pk=int(opportunity_id),
    )  # fmt: skip
    existing = Retrospective.objects.filter(opportunity=opportunity).first()
    if existing is not None:
        messages.info(request, "This deal already has a retrospective.")
        return redirect(existing)
    if opportunity.stage not in OpportunityStage.closed_stages():
        messages.error(request, "Only a closed deal can have a retrospective.")
        return redirect(opportunity)
    form = forms.RetrospectiveForm(
        request.POST or None, opportunity=opportunity, initial=_initial_for(request, opportunity)
    )
    if request.method == "POST" and form.is_valid():
        try:
            retrospective = services.retrospective_create(
                opportunity=opportunity, actor=request.user, **form.service_kwargs()
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Retrospective recorded. Add the drivers and action items.")
            return redirect(retrospective)
    context = {"form": form, "opportunity": opportunity, **_story(opportunity)}
    return render(request, "reporting/winloss/new.html", context)


def _initial_for(request, opportunity) -> dict:
    participants = [request.user.pk]
    if opportunity.owner_id and opportunity.owner_id != request.user.pk:
        participants.append(opportunity.owner_id)
    lead = opportunity.source_lead
    return {
        "participants": participants,
        "held_on": timezone.localdate(),
        "competitor": opportunity.competitor,
        "campaign": lead.source_campaign if lead else None,
        "loss_type": "competitor" if opportunity.competitor_id else "",
    }


def _story(opportunity) -> dict:
    return {"story": opportunity_story(opportunity)}


# --- One retrospective -----------------------------------------------------------------------


def _detail_context(request, retrospective, **extra) -> dict:
    can_edit = services.can_edit_retrospectives(request.user)
    context = {
        "retro": retrospective,
        "opportunity": retrospective.opportunity,
        "drivers": selectors.retrospective_drivers(retrospective),
        "participants": selectors.retrospective_participants(retrospective),
        "action_items": selectors.retrospective_action_items(retrospective),
        "can_edit": can_edit,
        "today": timezone.localdate(),
        "editing": False,
        "edit_driver": None,
        "edit_action": None,
    }
    if can_edit:
        context["driver_form"] = forms.DriverForm(prefix_id="_new")
        context["action_form"] = forms.ActionItemForm(
            prefix_id="_new", initial={"status": ActionItem.Status.OPEN}
        )
    context.update(extra)
    return context


def _retrospective(pk) -> Retrospective:
    try:
        return selectors.retrospective_for_page(pk)
    except Retrospective.DoesNotExist as error:
        raise Http404("No such retrospective.") from error


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def retrospective_detail(request, pk):
    """A retrospective beside the deal's story. `?edit=1` opens the summary
    form, `?driver=<id>` and `?action=<id>` a driver's or action item's form;
    htmx gets just that section (or `?section=<name>`)."""
    retrospective = _retrospective(pk)
    context = _detail_context(request, retrospective)
    section = request.GET.get("section", "")
    if section not in DETAIL_SECTIONS:
        section = "retro-main"
    if context["can_edit"]:
        if request.GET.get("edit") == "1":
            context["editing"] = True
            context["form"] = forms.RetrospectiveForm(
                opportunity=retrospective.opportunity,
                initial=forms.RetrospectiveForm.initial_for(retrospective),
            )
            section = "retro-summary"
        elif request.GET.get("driver", "").isdigit():
            driver = get_object_or_404(
                DecisionDriver, pk=int(request.GET["driver"]), retrospective=retrospective
            )
            context["edit_driver"] = driver
            context["edit_driver_form"] = forms.DriverForm(
                prefix_id=driver.pk,
                initial={"category": driver.category, "sentiment": driver.sentiment,
                         "note": driver.note},
            )  # fmt: skip
            section = "drivers"
        elif request.GET.get("action", "").isdigit():
            item = get_object_or_404(
                ActionItem, pk=int(request.GET["action"]), retrospective=retrospective
            )
            context["edit_action"] = item
            context["edit_action_form"] = forms.ActionItemForm(
                prefix_id=item.pk, initial=forms.ActionItemForm.initial_for(item)
            )
            section = "action-items"
    if not is_fragment(request):
        context.update(_story(retrospective.opportunity))
        return render(request, "reporting/winloss/detail.html", context)
    return render(request, f"reporting/winloss/detail.html#{section}", context)


def _section_done(request, retrospective, section, message, **extra):
    """After a successful change: the section (htmx) or the page (redirect)."""
    if not is_fragment(request):
        messages.success(request, message)
        return redirect(retrospective)
    retrospective = _retrospective(retrospective.pk)
    context = _detail_context(request, retrospective, flash=message, **extra)
    response = render(request, f"reporting/winloss/detail.html#{section}", context)
    return trigger_client_event(response, "retrospective-changed", {"id": retrospective.pk})


def _section_invalid(request, retrospective, section, **extra):
    """A form with errors, re-rendered in its section (status 200, so htmx swaps it)."""
    context = _detail_context(request, retrospective, **extra)
    if not is_fragment(request):
        context.update(_story(retrospective.opportunity))
        return render(request, "reporting/winloss/detail.html", context)
    return render(request, f"reporting/winloss/detail.html#{section}", context)


@require_http_methods(["POST"])
def retrospective_edit(request, pk):
    _require_editor(request)
    retrospective = _retrospective(pk)
    form = forms.RetrospectiveForm(request.POST, opportunity=retrospective.opportunity)
    if form.is_valid():
        try:
            services.retrospective_update(
                retrospective=retrospective, actor=request.user, **form.service_kwargs()
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return _section_done(request, retrospective, "retro-summary", "Retrospective saved.")
    return _section_invalid(request, retrospective, "retro-summary", editing=True, form=form)


@require_http_methods(["POST"])
def driver_add(request, pk):
    _require_editor(request)
    retrospective = _retrospective(pk)
    form = forms.DriverForm(request.POST, prefix_id="_new")
    if form.is_valid():
        try:
            services.driver_save(
                retrospective=retrospective, actor=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return _section_done(request, retrospective, "drivers", "Driver added.")
    return _section_invalid(request, retrospective, "drivers", driver_form=form)


@require_http_methods(["POST"])
def driver_edit(request, pk, driver_pk):
    _require_editor(request)
    retrospective = _retrospective(pk)
    driver = get_object_or_404(DecisionDriver, pk=driver_pk, retrospective=retrospective)
    form = forms.DriverForm(request.POST, prefix_id=driver.pk)
    if form.is_valid():
        try:
            services.driver_save(
                retrospective=retrospective, actor=request.user, driver=driver,
                **form.cleaned_data,
            )  # fmt: skip
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return _section_done(request, retrospective, "drivers", "Driver saved.")
    return _section_invalid(
        request, retrospective, "drivers", edit_driver=driver, edit_driver_form=form
    )


@require_http_methods(["POST"])
def driver_delete(request, pk, driver_pk):
    _require_editor(request)
    retrospective = _retrospective(pk)
    driver = get_object_or_404(DecisionDriver, pk=driver_pk, retrospective=retrospective)
    services.driver_delete(driver=driver, actor=request.user)
    return _section_done(request, retrospective, "drivers", "Driver removed.")


@require_http_methods(["POST"])
def action_item_add(request, pk):
    _require_editor(request)
    retrospective = _retrospective(pk)
    form = forms.ActionItemForm(request.POST, prefix_id="_new")
    if form.is_valid():
        try:
            services.action_item_create(
                retrospective=retrospective, actor=request.user, **form.service_kwargs()
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return _section_done(request, retrospective, "action-items", "Action item added.")
    return _section_invalid(request, retrospective, "action-items", action_form=form)


@require_http_methods(["POST"])
def action_item_edit(request, pk, item_pk):
    _require_editor(request)
    retrospective = _retrospective(pk)
    item = get_object_or_404(ActionItem, pk=item_pk, retrospective=retrospective)
    form = forms.ActionItemForm(request.POST, prefix_id=item.pk)
    if form.is_valid():
        try:
            services.action_item_update(
                action_item=item, actor=request.user, **form.service_kwargs()
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return _section_done(request, retrospective, "action-items", "Action item saved.")
    return _section_invalid(
        request, retrospective, "action-items", edit_action=item, edit_action_form=form
    )


@require_http_methods(["POST"])
def action_item_status(request, pk, item_pk):
    """Move an action item to another status (a one-click form on its row)."""
    _require_editor(request)
    retrospective = _retrospective(pk)
    item = get_object_or_404(ActionItem, pk=item_pk, retrospective=retrospective)
    form = forms.ActionStatusForm(request.POST)
    if not form.is_valid():
        return _section_invalid(request, retrospective, "action-items")
    item = services.action_item_status_set(
        action_item=item, actor=request.user, status=form.cleaned_data["status"]
    )
    return _section_done(
        request, retrospective, "action-items", f"“{item}” is {item.get_status_display().lower()}."
    )


# --- Insights ---------------------------------------------------------------------------------


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def insights(request):
    """Top drivers of wins and losses, by competitor, segment and quarter;
    coverage; open action items. See `reporting.winloss_selectors` for the weighting."""
    form = forms.PeriodForm(request.GET or None)
    today = timezone.localdate()
    start, end, label = form.bounds(today)
    context = {
        "form": form,
        "start": start,
        "end": end,
        "period_label": label,
        "data": selectors.insights(start=start, end=end, today=today),
        "open_items": list(selectors.action_items_open()[:10]),
        "today": today,
    }
    return render(request, _template(request, "insights", "insight-results"), context)
