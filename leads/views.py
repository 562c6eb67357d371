"""Pages of the shared record: leads, accounts, deals, and marketing's feedback view.

Function views: parse, check who may act, call one service, render. An htmx
request to a page's URL gets the page's fragment; every action also works as
a plain form post without JavaScript.
"""

import csv
from datetime import timedelta

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from config.http import is_fragment
from leads import forms, permissions, selectors, services
from leads.csv_safety import csv_safe
from leads.models import Account, Lead, Opportunity
from sla.selectors import lead_latest_evaluation

# --- The lead list ------------------------------------------------------------------


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def lead_list(request):
    """Search, filter, sort and page through leads; filters live in the URL."""
    form = forms.LeadFilterForm(request.GET or None, user=request.user)
    form.is_valid()
    filters = form.selector_kwargs()
    leads = selectors.leads_filtered(**filters)
    page = selectors.lead_list_page(
        leads,
        sort=form.sort_key,
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
    )
    count, count_capped = selectors.leads_count(leads)
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    without_account = query.copy()
    without_account.pop("account", None)
    context = {
        "form": form,
        "page": page,
        "count": count,
        "count_capped": count_capped,
        "account": filters["account"],
        "query": query.urlencode(),
        "query_without_account": without_account.urlencode(),
        "now": timezone.now(),
        "can_create": permissions.can_create_leads(request.user),
        "can_import": permissions.can_import(request.user),
    }
    template = "leads/lead_list.html"
    if is_fragment(request):
        template += "#lead-results"
    return render(request, template, context)


@require_http_methods(["GET"])
def lead_export(request):
    """The filtered list as CSV, streamed (formula-safe cells)."""
    form = forms.LeadFilterForm(request.GET or None, user=request.user)
    form.is_valid()
    leads = selectors.leads_filtered(**form.selector_kwargs())
    rows = selectors.leads_for_export(leads, sort=form.sort_key)
    header = [
        "id", "email", "first_name", "last_name", "title", "company", "account", "stage",
        "score", "owner", "source_channel", "source_campaign", "segment", "country",
        "created_at", "mql_at", "response_due_at", "first_contact_at", "sla_version",
    ]  # fmt: skip

    def lines():
        writer = csv.writer(Echo())
        yield writer.writerow(header)
        for lead in rows:
            yield writer.writerow(csv_safe(_export_row(lead)))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="accord-leads-{stamp}.csv"'
    return response


class Echo:
    """A file-like object whose write() returns the line, for streaming CSV."""

    def write(self, value):
        return value


def _export_row(lead) -> list:
    return [
        lead.pk,
        lead.email,
        lead.first_name,
        lead.last_name,
        lead.title,
        lead.company,
        lead.account.name if lead.account else "",
        lead.stage,
        lead.score,
        lead.owner.username if lead.owner else "",
        lead.source_channel,
        lead.source_campaign.name if lead.source_campaign else "",
        lead.segment,
        lead.country,
        _iso(lead.created_at),
        _iso(lead.mql_at),
        _iso(lead.response_due_at),
        _iso(lead.first_contact_at),
        lead.sla_version.label if lead.sla_version else "",
    ]


def _iso(value):
    return value.isoformat() if value else ""


# --- Creating and editing leads ------------------------------------------------------


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def lead_create(request):
    """Add a lead by hand. While typing, an htmx request shows leads this one
    would duplicate."""
    permissions.require(permissions.can_create_leads(request.user), "You cannot add leads.")
    if request.method == "GET" and is_fragment(request):
        duplicates = selectors.lead_duplicates_for_new(
            email=request.GET.get("email", ""),
            first_name=request.GET.get("first_name", ""),
            last_name=request.GET.get("last_name", ""),
            company=request.GET.get("company", ""),
        )
        return render(request, "leads/lead_form.html#duplicate-hint", {"duplicates": duplicates})
    form = forms.LeadForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        email = data.pop("email")
        channel = data.pop("channel")
        campaign = data.pop("campaign")
        if Lead.objects.filter(email=email).exists():
            form.add_error("email", "A lead with this email already exists.")
        else:
            result = services.lead_upsert(
                email=email, data=data, channel=channel, campaign=campaign, actor=request.user
            )
            messages.success(request, f"Lead {result.lead} added.")
            return redirect(result.lead)
    duplicates = []
    if form.is_bound:
        duplicates = selectors.lead_duplicates_for_new(
            email=request.POST.get("email", ""),
            first_name=request.POST.get("first_name", ""),
            last_name=request.POST.get("last_name", ""),
            company=request.POST.get("company", ""),
        )
    return render(
        request, "leads/lead_form.html", {"form": form, "duplicates": duplicates, "lead": None}
    )


@require_http_methods(["GET", "POST"])
def lead_edit(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    permissions.require(permissions.can_edit_lead(request.user, lead), "You cannot edit this lead.")
    initial = {field: getattr(lead, field) for field in services.LEAD_DATA_FIELDS}
    form = forms.LeadEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        edited = {name: form.cleaned_data[name] for name in form.changed_data}
        if not edited:
            messages.info(request, "Nothing was changed.")
            return redirect(lead)
        services.lead_update(lead=lead, actor=request.user, data=edited)
        messages.success(request, "Lead details saved.")
        return redirect(lead)
    return render(request, "leads/lead_form.html", {"form": form, "lead": lead})


# --- The lead page and working a lead ----------------------------------------------------

LEAD_ACTIONS = {
    # action -> (form class, label)
    "reject": (forms.LeadRejectForm, "Reject"),
    "disqualify": (forms.LeadDisqualifyForm, "Disqualify"),
    "convert": (forms.ConvertForm, "Convert to opportunity"),
    "activity": (forms.ActivityForm, "Log activity"),
    "feedback": (forms.LeadFeedbackForm, "Add feedback"),
    "assign": (forms.AssignForm, "Reassign"),
    "touchpoint": (forms.TouchpointForm, "Record a touchpoint"),
}


def _lead_page_context(request, lead, *, action="", form=None, before=None):
    """The lead page; `before` (a timeline cursor) starts the timeline at
    older entries (the "Show older" link without JavaScript)."""
    lead.refresh_from_db()
    user = request.user
    allowed = services.lead_allowed_transitions(lead)
    can_work = permissions.can_work_lead(user, lead)
    entries, older_than = selectors.lead_timeline(lead, before=before)
    if action and form is None and action in LEAD_ACTIONS:
        form_class = LEAD_ACTIONS[action][0]
        form = form_class(initial={"owner": lead.owner_id} if action == "assign" else None)
    return {
        "lead": lead,
        "timeline": entries,
        "older_than": older_than,
        "timeline_before": before is not None,
        "action": action if action in LEAD_ACTIONS else "",
        "action_label": LEAD_ACTIONS.get(action, ("", ""))[1],
        "form": form,
        "can": {
            "accept": can_work and "accept" in allowed,
            "reject": can_work and "reject" in allowed,
            "qualify": can_work and "qualify" in allowed,
            "convert": can_work and "convert" in allowed,
            "disqualify": permissions.can_disqualify_lead(user, lead) and "disqualify" in allowed,
            "activity": can_work,
            "feedback": can_work,
            "assign": permissions.can_assign_lead(user, lead),
            "edit": permissions.can_edit_lead(user, lead),
            "touchpoint": permissions.can_edit_lead(user, lead),
        },
        "sla_status": selectors.SlaStatus.of(lead),
        "evaluation": lead_latest_evaluation(lead),
        "duplicates": selectors.lead_duplicates(lead),
        "opportunities": list(lead.opportunities.select_related("account")),
    }


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def lead_detail(request, pk):
    """A lead: who, account, owner, stage, score, and one timeline of
    everything that happened. `?do=<action>` opens that action's form;
    `?before=<cursor>` returns older timeline entries (htmx: just those; a
    plain request: the page with the timeline starting there)."""
    lead = get_object_or_404(
        Lead.objects.select_related("account", "owner", "source_campaign"), pk=pk
    )
    before = None
    if request.GET.get("before"):
        before = selectors.TimelineCursor.parse(request.GET["before"])
    if is_fragment(request) and request.GET.get("before"):
        entries, older_than = selectors.lead_timeline(lead, before=before)
        return render(
            request,
            "leads/lead_detail.html#timeline-entries",
            {"lead": lead, "timeline": entries, "older_than": older_than},
        )
    context = _lead_page_context(request, lead, action=request.GET.get("do", ""), before=before)
    template = "leads/lead_detail.html"
    if is_fragment(request):
        template += "#lead-main"
    return render(request, template, context)


def _lead_action_done(request, lead, message):
    messages.success(request, message)
    if is_fragment(request):
        response = render(
            request, "leads/lead_detail.html#lead-main", _lead_page_context(request, lead)
        )
        return trigger_client_event(response, "lead-changed", {"id": lead.pk})
    return redirect(lead)


def _lead_action_refused(request, lead, error, *, action="", form=None):
    messages.error(request, str(error))
    if is_fragment(request):
        return render(
            request,
            "leads/lead_detail.html#lead-main",
            _lead_page_context(request, lead, action=action, form=form),
        )
    return redirect(lead)


def _lead_form_invalid(request, lead, action, form):
    template = "leads/lead_detail.html"
    if is_fragment(request):
        template += "#lead-main"
    return render(request, template, _lead_page_context(request, lead, action=action, form=form))


def _expected_version(request):
    value = request.POST.get("version", "")
    return int(value) if value.isdigit() else None


@require_http_methods(["POST"])
def lead_accept(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    try:
        services.lead_accept(
            lead=lead, actor=request.user, expected_version=_expected_version(request)
        )
    except (services.TransitionError, services.ConflictError) as error:
        return _lead_action_refused(request, lead, error)
    return _lead_action_done(request, lead, f"You accepted {lead}. Log your first contact next.")


@require_http_methods(["POST"])
def lead_qualify(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    form = forms.NoteForm(request.POST)
    form.is_valid()
    try:
        services.lead_qualify(
            lead=lead,
            actor=request.user,
            note=form.cleaned_data.get("note", ""),
            expected_version=_expected_version(request),
        )
    except (services.TransitionError, services.ConflictError) as error:
        return _lead_action_refused(request, lead, error)
    return _lead_action_done(request, lead, f"{lead} is now a sales-qualified lead.")


@require_http_methods(["POST"])
def lead_reject(request, pk):
    return _lead_verdict(
        request, pk, "reject", services.lead_reject, "rejected and returned to marketing"
    )


@require_http_methods(["POST"])
def lead_disqualify(request, pk):
    return _lead_verdict(request, pk, "disqualify", services.lead_disqualify, "disqualified")


def _lead_verdict(request, pk, action, service, done_words):
    lead = get_object_or_404(Lead, pk=pk)
    allowed = (
        permissions.can_disqualify_lead(request.user, lead)
        if action == "disqualify"
        else permissions.can_work_lead(request.user, lead)
    )
    permissions.require(allowed, f"You cannot {action} this lead.")
    form = LEAD_ACTIONS[action][0](request.POST)
    if not form.is_valid():
        return _lead_form_invalid(request, lead, action, form)
    try:
        service(
            lead=lead,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
            objections=form.cleaned_data["objections"],
            competitor=form.cleaned_data["competitor"],
            expected_version=_expected_version(request),
        )
    except (services.TransitionError, services.ConflictError) as error:
        return _lead_action_refused(request, lead, error, action=action, form=form)
    return _lead_action_done(
        request, lead, f"{lead} {done_words}. Reason: {form.cleaned_data['reason']}."
    )


@require_http_methods(["POST"])
def lead_convert(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    permissions.require(permissions.can_work_lead(request.user, lead), "You cannot work this lead.")
    form = forms.ConvertForm(request.POST)
    if not form.is_valid():
        return _lead_form_invalid(request, lead, "convert", form)
    try:
        opportunity = services.lead_convert(
            lead=lead, actor=request.user, expected_version=_expected_version(request),
            **form.cleaned_data,
        )  # fmt: skip
    except (services.TransitionError, services.ConflictError) as error:
        return _lead_action_refused(request, lead, error, action="convert", form=form)
    messages.success(request, f"{lead} converted: {opportunity} is open on {opportunity.account}.")
    if is_fragment(request):
        return HttpResponseClientRedirect(opportunity.get_absolute_url())
    return redirect(opportunity)


@require_http_methods(["POST"])
def lead_activity(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    permissions.require(permissions.can_work_lead(request.user, lead), "You cannot work this lead.")
    form = forms.ActivityForm(request.POST)
    if not form.is_valid():
        return _lead_form_invalid(request, lead, "activity", form)
    try:
        activity = services.activity_log(
            actor=request.user,
            lead=lead,
            kind=form.cleaned_data["kind"],
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["body"],
            occurred_at=form.cleaned_data["occurred_at"],
        )
    except services.TransitionError as error:
        return _lead_action_refused(request, lead, error, action="activity", form=form)
    return _lead_action_done(request, lead, f"{activity.get_kind_display()} logged.")


@require_http_methods(["POST"])
def lead_feedback(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    permissions.require(permissions.can_work_lead(request.user, lead), "You cannot work this lead.")
    form = forms.LeadFeedbackForm(request.POST)
    if not form.is_valid():
        return _lead_form_invalid(request, lead, "feedback", form)
    try:
        services.lead_feedback_add(lead=lead, actor=request.user, **form.cleaned_data)
    except services.TransitionError as error:
        return _lead_action_refused(request, lead, error, action="feedback", form=form)
    return _lead_action_done(
        request, lead, "Feedback recorded; marketing sees it on the feedback page."
    )


@require_http_methods(["POST"])
def lead_touchpoint(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    permissions.require(
        permissions.can_edit_lead(request.user, lead), "You cannot record touchpoints here."
    )
    form = forms.TouchpointForm(request.POST)
    if not form.is_valid():
        return _lead_form_invalid(request, lead, "touchpoint", form)
    try:
        touchpoint = services.touchpoint_record(lead=lead, actor=request.user, **form.cleaned_data)
    except services.TransitionError as error:
        return _lead_action_refused(request, lead, error, action="touchpoint", form=form)
    return _lead_action_done(
        request, lead, f"{touchpoint.get_type_display()} recorded; the score updates in a moment."
    )


@require_http_methods(["POST"])
def lead_assign(request, pk):
    lead = get_object_or_404(Lead, pk=pk)
    permissions.require(
        permissions.can_assign_lead(request.user, lead), "You cannot reassign this lead."
    )
    form = forms.AssignForm(request.POST)
    if not form.is_valid():
        return _lead_form_invalid(request, lead, "assign", form)
    owner = form.cleaned_data["owner"]
    services.lead_assign(lead=lead, actor=request.user, owner=owner)
    who = (owner.get_full_name() or owner.username) if owner else "nobody"
    return _lead_action_done(request, lead, f"{lead} is now assigned to {who}.")


# --- Accounts and deals -------------------------------------------------------------------


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def account_list(request):
    form = forms.AccountFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    accounts = selectors.accounts_filtered(
        q=data.get("q") or "",
        segments=data.get("segment") or (),
        industry=data.get("industry") or "",
    )
    page = selectors.account_list_page(
        accounts, after=request.GET.get("after", ""), before=request.GET.get("before", "")
    )
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    template = "leads/account_list.html"
    if is_fragment(request):
        template += "#account-results"
    return render(request, template, context)


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def account_detail(request, pk):
    """An account: its people, open and closed deals, touchpoints and
    activities, with true counts. `?section=<name>&after=<cursor>` (or
    `before`) pages one section; htmx gets that section's fragment."""
    account = get_object_or_404(Account.objects.select_related("parent", "owner"), pk=pk)
    section = request.GET.get("section", "")
    cursor = {key: request.GET[key] for key in ("after", "before") if request.GET.get(key)}
    if section not in selectors.ACCOUNT_SECTIONS:
        section, cursor = "", {}
    if section and is_fragment(request):
        counts = selectors.account_section_counts(account)
        sections = {
            section: selectors.account_section(account, section, count=counts[section], **cursor)
        }
        return render(
            request,
            f"leads/account_detail.html#account-{section}",
            {"account": account, "sections": sections},
        )
    overview = selectors.account_overview(account, paged={section: cursor} if section else None)
    return render(request, "leads/account_detail.html", {"account": account, **overview})


@require_http_methods(["GET"])
def opportunity_detail(request, pk):
    """A deal: its account, amount and stage history, and the story of the lead
    it came from (touchpoints, activities, stage changes)."""
    opportunity = get_object_or_404(
        Opportunity.objects.select_related(
            "account", "owner", "product", "source_lead", "loss_reason", "competitor"
        ),
        pk=pk,
    )
    context = {"opportunity": opportunity, **selectors.opportunity_story(opportunity)}
    return render(request, "leads/opportunity_detail.html", context)


# --- Marketing's feedback view ------------------------------------------------------------


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def feedback_report(request):
    """What sales says about marketing's leads: rejections and disqualifications
    by reason, campaign, channel or competitor, and the objections heard."""
    today = timezone.localdate()
    defaults = {"start": today - timedelta(days=89), "end": today, "group_by": "reason"}
    form = forms.FeedbackReportForm(request.GET or None, initial=defaults)
    # Invalid input shows the default view, with the errors above it (in the fragment).
    data = form.cleaned_data if form.is_bound and form.is_valid() else defaults
    start, end, group_by = data["start"], data["end"], data["group_by"]
    context = {
        "form": form,
        "start": start,
        "end": end,
        "group_label": selectors.FEEDBACK_GROUPS[group_by][0],
        "group_by": group_by,
        "summary": selectors.feedback_summary(start=start, end=end, group_by=group_by),
        "crosstab": selectors.feedback_by_reason_and_dimension(
            start=start, end=end, group_by=group_by
        )
        if group_by != "reason"
        else [],
        "intel": selectors.feedback_intel_by_dimension(start=start, end=end, group_by=group_by),
        "objections": selectors.objections_summary(start=start, end=end),
        "recent": selectors.feedback_recent(start=start, end=end),
    }
    context["total"] = sum(row["total"] for row in context["summary"])
    template = "leads/feedback.html"
    if is_fragment(request):
        template += "#feedback-results"
    return render(request, template, context)
