"""Pages of the agreement: the SLA and ICP versions, their editor, diff,
impact preview and publishing, and the persona playbook.

Everyone reads every page. Marketing, sales managers and RevOps admins draft
and edit drafts (`versions.can_draft`); only RevOps admins publish
(`versions.can_publish`). Views check both before calling a service, which
checks again.

A version's page is one URL. Its sections are cards: `?edit=<section>` opens
one as a form (an htmx request gets just that card), the form posts to the
section's URL, and the answer to htmx is the card again: read back on
success, with its errors in place (status 200) when invalid. Without
JavaScript the same links and forms work as whole pages.
"""

import copy
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.db.models import Count, Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from config.http import is_fragment
from leads.models import Lead
from sla import agreement_forms as forms
from sla import editor, versions
from sla.impact import impact_preview
from sla.models import (
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    Persona,
    RescoreJob,
    SlaVersion,
    VersionStatus,
)

DETAIL_TEMPLATE = "sla/agreement/version_detail.html"

# --- What each kind of version is made of ------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A card of a version's page: its own fields (a form), rows of one kind
    of part (a formset), or both."""

    name: str
    title: str
    form_class: type | None = None
    formset_class: type | None = None
    rows: str = ""  # the context key of the part rows the formset edits
    intro: str = ""


@dataclass(frozen=True)
class Kind:
    name: str  # "sla" or "icp": URL names and templates
    label: str
    model: type
    sections: tuple
    draft_create: object

    def section(self, name):
        return next((s for s in self.sections if s.name == name), None)

    def url(self, view, *args):
        return reverse(f"sla:{self.name}_{view}", args=args)

    def urls(self, version) -> dict:
        """The version's action URLs, for templates."""
        urls = {
            view: self.url(view, version.pk) for view in ("diff", "impact", "discard", "publish")
        }
        urls["draft_create"] = self.url("draft_create")
        return urls


SLA = Kind(
    name="sla",
    label="SLA",
    model=SlaVersion,
    draft_create=versions.sla_draft_create,
    sections=(
        Section("about", "About this version", forms.AboutForm),
        Section("qualification", "1. When a lead qualifies", forms.QualificationForm),
        Section(
            "criteria",
            "2. Behaviour that must be seen",
            formset_class=forms.CriteriaFormSetClass,
            rows="criteria",
            intro="A lead shows a behaviour when it has at least so many touchpoints of "
            "these kinds within so many days. Hold Ctrl (⌘ on a Mac) to choose several kinds.",
        ),
        Section(
            "engagement",
            "3. How engagement scores",
            forms.EngagementForm,
            forms.GroupFormSetClass,
            rows="groups",
            intro="Each touchpoint earns points in a group; a group's points are capped.",
        ),
        Section(
            "rules",
            "4. Points per touchpoint",
            formset_class=forms.RuleFormSetClass,
            rows="rules",
            intro="A rule on a funnel stage applies to touchpoints on assets of that stage; "
            "the rule without a stage applies to the rest.",
        ),
        Section("sales", "5. What sales commits to", forms.SalesForm),
        Section("escalation", "6. When a response is late", forms.EscalationForm),
        Section("marketing", "7. What marketing commits to", forms.MarketingForm),
        Section("feedback", "8. Feedback both teams give", forms.FeedbackForm),
    ),
)

ICP = Kind(
    name="icp",
    label="ICP",
    model=IcpVersion,
    draft_create=versions.icp_draft_create,
    sections=(
        Section("about", "About this version", forms.IcpAboutForm),
        Section(
            "fit",
            "1. Who fits",
            forms.FitForm,
            forms.FitRuleFormSetClass,
            rows="fit_rules",
            intro="A lead's company earns the points of every rule it matches, up to the "
            "maximum. Bands include their bounds and must not overlap.",
        ),
        Section("personas", "2. Who buys: personas"),
    ),
)

KINDS = {"sla": SLA, "icp": ICP}


def _kind_of(version) -> Kind:
    return SLA if isinstance(version, SlaVersion) else ICP


def _parts(version) -> dict:
    """The version's parts, one query per kind of part, for the read view and
    the formsets."""
    if isinstance(version, SlaVersion):
        return {
            "groups": list(
                EngagementGroup.objects.filter(version=version).annotate(rule_count=Count("rules"))
            ),
            "rules": list(EngagementRule.objects.filter(version=version).select_related("group")),
            "criteria": list(BehaviourCriterion.objects.filter(version=version)),
        }
    return {
        "fit_rules": list(FitRule.objects.filter(version=version)),
        "personas": list(Persona.objects.filter(version=version)),
    }


# --- A section being edited --------------------------------------------------------------


@dataclass
class SectionEditor:
    """A section's form and formset (bound to POST data or not)."""

    section: Section
    version: object
    data: object = None
    persona: Persona | None = None
    form: object = None
    formset: object = None
    error: list = field(default_factory=list)

    def __post_init__(self):
        section, version = self.section, self.version
        if section.name == "personas":
            instance = self.persona or Persona(version=version)
            self.form = forms.PersonaForm(self.data, instance=instance, prefix="persona")
            return
        if section.form_class:
            # A copy: an invalid form must not leak into the rest of the page.
            self.form = section.form_class(
                self.data, instance=copy.copy(version), prefix=section.name
            )
        if section.formset_class:
            queryset = section.formset_class.model.objects.filter(version=version)
            if section.rows == "rules":
                queryset = queryset.select_related("group")
            self.formset = section.formset_class(
                self.data, queryset=queryset, version=version, prefix=f"{section.name}-rows"
            )

    def is_valid(self) -> bool:
        valid = True
        if self.form is not None:
            valid = self.form.is_valid() and valid
        if self.formset is not None:
            valid = self.formset.is_valid() and valid
        return valid

    def changes(self) -> editor.SectionChanges:
        changes = self.formset.changes() if self.formset is not None else editor.SectionChanges()
        if self.form is not None:
            changes.fields = {name: self.form.cleaned_data[name] for name in self.form._meta.fields}
        return changes

    def save(self, actor):
        if self.section.name == "personas":
            data = {name: self.form.cleaned_data[name] for name in self.form._meta.fields}
            return editor.persona_save(
                version=self.version, actor=actor, data=data, persona=self.persona
            )
        return editor.draft_section_save(version=self.version, actor=actor, changes=self.changes())

    def refuse(self, error) -> None:
        """Show a service's refusal in the section (field errors on their fields)."""
        if (
            isinstance(error, ValidationError)
            and self.form is not None
            and hasattr(error, "error_dict")
        ):
            self.form.add_error(None, _placeable(self.form, error))
            return
        self.error = _messages_of(error)


def _placeable(form, error: ValidationError) -> ValidationError:
    placed: dict = {}
    for name, messages_ in error.error_dict.items():
        placed.setdefault(name if name in form.fields else "__all__", []).extend(messages_)
    return ValidationError(placed)


def _messages_of(error) -> list[str]:
    if isinstance(error, ValidationError):
        return list(error.messages)
    if isinstance(error, IntegrityError):
        return [
            "The database refused the change: this version is no longer a draft, or another "
            "row already says the same. Reload the page and try again."
        ]
    return [str(error)]


# --- Context -----------------------------------------------------------------------------


def _version_or_404(kind: Kind, pk):
    return get_object_or_404(
        kind.model.objects.select_related("created_by", "published_by", "based_on"), pk=pk
    )


def _rescore_job(version):
    if version.status != VersionStatus.PUBLISHED:
        return None
    field_name = "sla_version" if isinstance(version, SlaVersion) else "icp_version"
    return RescoreJob.objects.filter(**{field_name: version}).order_by("-created_at").first()


def _section_card(kind, section, version, *, editor_=None, notice="", error=()):
    return {
        "section": section,
        "editor": editor_,
        "notice": notice,
        "error": list(error) or (editor_.error if editor_ else []),
        "save_url": kind.url("section_save", version.pk, section.name),
    }


def _page_context(request, kind, version, *, parts=None, editing=None, publish_form=None,
                  publish_error=()):  # fmt: skip
    user = request.user
    parts = parts if parts is not None else _parts(version)
    can_edit = version.is_draft and versions.can_draft(user)
    cards = []
    for section in kind.sections:
        current = editing if editing and editing.section.name == section.name else None
        cards.append(_section_card(kind, section, version, editor_=current))
    context = {
        "kind": kind,
        "version": version,
        "urls": kind.urls(version),
        "parts": parts,
        "cards": cards,
        "can_edit": can_edit,
        "can_draft": versions.can_draft(user),
        "can_publish": version.is_draft and versions.can_publish(user),
        "publish_form": publish_form
        or forms.PublishForm(initial={"changelog": version.changelog}, model=kind.model),
        "publish_error": list(publish_error),
        "stale": versions.draft_staleness(version),
        "rescore_job": _rescore_job(version),
        "previous": versions.previous_version(version),
    }
    if kind is SLA:
        context["icp_in_force"] = versions.icp_in_force()
    return context


def _card_response(request, kind, version, card, *, parts=None):
    context = {
        "kind": kind,
        "version": version,
        "parts": parts if parts is not None else _parts(version),
        "card": card,
        "can_edit": version.is_draft and versions.can_draft(request.user),
    }
    if kind is SLA:
        context["icp_in_force"] = versions.icp_in_force()
    return render(request, f"{DETAIL_TEMPLATE}#section-card", context)


def _editor_for(kind, version, name, *, data=None, persona_key=""):
    section = kind.section(name)
    if section is None:
        return None
    persona = None
    if section.name == "personas":
        if persona_key in ("", None):
            return None
        if persona_key != "new":
            persona = Persona.objects.filter(version=version, pk=_int(persona_key)).first()
            if persona is None:
                raise Http404("No such persona in this version.")
    return SectionEditor(section, version, data=data, persona=persona)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- The version list ----------------------------------------------------------------------


@require_http_methods(["GET"])
def version_list(request):
    """Both histories on one page: every SLA and ICP version, newest first."""
    users = ("created_by", "published_by")
    return render(
        request,
        "sla/agreement/version_list.html",
        {
            "sla_versions": list(SlaVersion.objects.select_related(*users)),
            "icp_versions": list(IcpVersion.objects.select_related(*users)),
            "can_draft": versions.can_draft(request.user),
            "can_publish": versions.can_publish(request.user),
        },
    )


# --- A version's page and its sections -------------------------------------------------------


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def sla_detail(request, pk):
    return _detail(request, SLA, pk)


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def icp_detail(request, pk):
    return _detail(request, ICP, pk)


def _detail(request, kind, pk):
    """The version as written. `?edit=<section>` opens a section's form (on a
    draft, for those who may edit; others get the read view), `?section=<name>`
    asks htmx for one card read back, `?section=rescore` for the re-scoring
    progress."""
    version = _version_or_404(kind, pk)
    wanted = request.GET.get("section", "")
    if is_fragment(request) and wanted == "rescore":
        return render(
            request,
            f"{DETAIL_TEMPLATE}#rescore",
            {"version": version, "rescore_job": _rescore_job(version)},
        )
    editing = None
    if version.is_draft and versions.can_draft(request.user):
        editing = _editor_for(
            kind, version, request.GET.get("edit", ""), persona_key=request.GET.get("persona", "")
        )
    if is_fragment(request):
        # Someone who may not edit asking for a form gets the card read back.
        section = (
            editing.section if editing else kind.section(wanted or request.GET.get("edit", ""))
        )
        if section is not None:
            card = _section_card(kind, section, version, editor_=editing)
            return _card_response(request, kind, version, card)
    return render(request, DETAIL_TEMPLATE, _page_context(request, kind, version, editing=editing))


@require_http_methods(["POST"])
def sla_section_save(request, pk, section):
    return _section_save(request, SLA, pk, section)


@require_http_methods(["POST"])
def icp_section_save(request, pk, section):
    return _section_save(request, ICP, pk, section)


def _section_save(request, kind, pk, name):
    if not versions.can_draft(request.user):
        raise PermissionDenied("Marketing, sales managers and RevOps admins edit drafts.")
    version = _version_or_404(kind, pk)
    section = kind.section(name)
    if section is None:
        raise Http404("No such section.")
    if not version.is_draft:
        return _section_refused(
            request, kind, version, section,
            f"{version.label} is {version.get_status_display().lower()}: it cannot be changed. "
            "Start a new draft from the version in force instead.",
        )  # fmt: skip
    persona_key = request.POST.get("persona", "new") if name == "personas" else ""
    editing = _editor_for(kind, version, name, data=request.POST, persona_key=persona_key or "new")
    if editing.is_valid():
        try:
            editing.save(request.user)
        except (ValidationError, versions.VersionError, IntegrityError) as error:
            # ImmutableVersionError is a ValidationError: a publish won the race.
            editing.refuse(error)
        else:
            return _section_saved(request, kind, version, section)
    if is_fragment(request):
        card = _section_card(kind, section, version, editor_=editing)
        return _card_response(request, kind, version, card)
    return render(request, DETAIL_TEMPLATE, _page_context(request, kind, version, editing=editing))


def _section_saved(request, kind, version, section):
    version.refresh_from_db()
    notice = f"Saved “{section.title.split('. ', 1)[-1]}”."
    if is_fragment(request):
        card = _section_card(kind, section, version, notice=notice)
        return _card_response(request, kind, version, card)
    messages.success(request, notice)
    return redirect(f"{version.get_absolute_url()}#section-{section.name}")


def _section_refused(request, kind, version, section, message):
    if is_fragment(request):
        card = _section_card(kind, section, version, error=[message])
        return _card_response(request, kind, version, card)
    messages.error(request, message)
    return redirect(version)


@require_http_methods(["POST"])
def persona_delete(request, pk, persona_pk):
    """Delete a persona of a draft ICP; htmx gets the personas card back."""
    if not versions.can_draft(request.user):
        raise PermissionDenied("Marketing, sales managers and RevOps admins edit drafts.")
    version = _version_or_404(ICP, pk)
    persona = get_object_or_404(Persona, version=version, pk=persona_pk)
    section = ICP.section("personas")
    try:
        editor.part_delete(part=persona, actor=request.user)
    except (ValidationError, versions.VersionError, IntegrityError) as error:
        return _section_refused(request, ICP, version, section, " ".join(_messages_of(error)))
    notice = f"Deleted the persona “{persona.name}”."
    if is_fragment(request):
        card = _section_card(ICP, section, version, notice=notice)
        return _card_response(request, ICP, version, card)
    messages.success(request, notice)
    return redirect(f"{version.get_absolute_url()}#section-personas")


# --- Drafts: create, discard, publish ------------------------------------------------------------


@require_http_methods(["POST"])
def sla_draft_create(request):
    return _draft_create(request, SLA)


@require_http_methods(["POST"])
def icp_draft_create(request):
    return _draft_create(request, ICP)


def _draft_create(request, kind):
    if not versions.can_draft(request.user):
        raise PermissionDenied("Marketing, sales managers and RevOps admins draft changes.")
    draft = kind.draft_create(actor=request.user)
    source = f" from {draft.based_on.label}" if draft.based_on_id else ""
    messages.success(
        request, f"{kind.label} {draft.label} drafted{source}. Edit it, then publish it."
    )
    return redirect(draft)


@require_http_methods(["POST"])
def sla_discard(request, pk):
    return _discard(request, SLA, pk)


@require_http_methods(["POST"])
def icp_discard(request, pk):
    return _discard(request, ICP, pk)


def _discard(request, kind, pk):
    if not versions.can_draft(request.user):
        raise PermissionDenied("Marketing, sales managers and RevOps admins discard drafts.")
    version = _version_or_404(kind, pk)
    try:
        versions.version_discard(version=version, actor=request.user)
    except (versions.VersionError, IntegrityError) as error:
        messages.error(request, " ".join(_messages_of(error)))
        target = version.get_absolute_url()
    else:
        messages.success(request, f"{kind.label} draft {version.label} discarded.")
        target = reverse("sla:version_list")
    if is_fragment(request):
        return HttpResponseClientRedirect(target)
    return redirect(target)


@require_http_methods(["POST"])
def sla_publish(request, pk):
    return _publish(request, SLA, pk)


@require_http_methods(["POST"])
def icp_publish(request, pk):
    return _publish(request, ICP, pk)


def _publish(request, kind, pk):
    """Put a draft in force with its changelog (RevOps admins), then show the
    version's page, where the re-scoring of open leads reports its progress.
    A refusal (e.g. a draft cloned from a version no longer in force) is
    shown in the publish card."""
    if not versions.can_publish(request.user):
        raise PermissionDenied("Only RevOps admins publish a version.")
    version = _version_or_404(kind, pk)
    form = forms.PublishForm(request.POST, model=kind.model)
    errors = []
    if form.is_valid():
        try:
            versions.version_publish(
                version=version,
                actor=request.user,
                changelog=form.cleaned_data["changelog"],
                closes_actions=form.cleaned_data.get("closes_actions") or (),
            )
        except (versions.VersionError, ValidationError, IntegrityError) as error:
            errors = _messages_of(error)
        else:
            messages.success(
                request,
                f"{kind.label} {version.label} is in force. Open leads are being re-scored.",
            )
            if is_fragment(request):
                return HttpResponseClientRedirect(version.get_absolute_url())
            return redirect(version)
    if is_fragment(request):
        return render(
            request,
            f"{DETAIL_TEMPLATE}#publish-card",
            {"kind": kind, "version": version, "urls": kind.urls(version), "publish_form": form,
             "publish_error": errors, "can_publish": True,
             "stale": versions.draft_staleness(version)},
        )  # fmt: skip
    context = _page_context(request, kind, version, publish_form=form, publish_error=errors)
    return render(request, DETAIL_TEMPLATE, context)


# --- Diff and impact -----------------------------------------------------------------------------


@require_http_methods(["GET"])
def sla_diff(request, pk):
    return _diff(request, SLA, pk)


@require_http_methods(["GET"])
def icp_diff(request, pk):
    return _diff(request, ICP, pk)


def _diff(request, kind, pk):
    """What changed from the previous version (or `?against=<pk>`), field by
    field and grouped by section."""
    version = _version_or_404(kind, pk)
    others = list(kind.model.objects.exclude(pk=version.pk).only("pk", "number", "title", "status"))
    against = None
    against_id = _int(request.GET.get("against"))
    if against_id is not None:
        against = next((other for other in others if other.pk == against_id), None)
        if against is None:
            raise Http404("No such version to compare with.")
    else:
        against = versions.previous_version(version)
    changes = versions.version_diff(against, version)
    sections: dict[str, list] = {}
    for change in changes:
        if change.before == "—":
            change.kind = "added"
        elif change.after == "—":
            change.kind = "removed"
        else:
            change.kind = "changed"
        sections.setdefault(change.section, []).append(change)
    return render(
        request,
        "sla/agreement/diff.html",
        {
            "kind": kind,
            "version": version,
            "against": against,
            "others": others,
            "sections": sections,
            "change_count": len(changes),
            "stale": versions.draft_staleness(version),
        },
    )


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def sla_impact(request, pk):
    return _impact(request, SLA, pk)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def icp_impact(request, pk):
    return _impact(request, ICP, pk)


def _impact(request, kind, pk):
    """Before publishing: the last 90 days' leads under the draft and under the
    versions in force. The figures are cached (see `sla.impact`), but a cold
    computation takes seconds on a large database, so the page comes at once
    and fetches its figures (the page's fragment) with htmx; without
    JavaScript, `?figures=1` renders the page with them. A POST ("Re-evaluate
    now", by those who may edit drafts) evaluates both sides afresh."""
    version = _version_or_404(kind, pk)
    key = "draft_sla" if kind is SLA else "draft_icp"
    impact = None
    if request.method == "POST":
        if not versions.can_draft(request.user):
            raise PermissionDenied(
                "Marketing, sales managers and RevOps admins re-evaluate drafts."
            )
        page = kind.url("impact", version.pk)
        if not version.is_draft:  # published meanwhile: the page says so
            return HttpResponseClientRedirect(page) if is_fragment(request) else redirect(page)
        impact = impact_preview(**{key: version}, refresh=True)
        if not is_fragment(request):
            return redirect(f"{page}?figures=1")
        figures = True
    else:
        figures = version.is_draft and (is_fragment(request) or bool(request.GET.get("figures")))
        if figures:
            impact = impact_preview(**{key: version})
    context = {
        "kind": kind,
        "version": version,
        "impact": impact,
        "figures_later": version.is_draft and not figures,
        "can_publish": version.is_draft and versions.can_publish(request.user),
        "can_reevaluate": version.is_draft and versions.can_draft(request.user),
    }
    if figures and is_fragment(request):
        return render(request, "sla/agreement/impact.html#impact-figures", context)
    return render(request, "sla/agreement/impact.html", context)


# --- Personas ------------------------------------------------------------------------------------


@require_http_methods(["GET"])
def personas(request):
    """The persona playbook: every persona of the ICP in force on one page,
    by role in the buying committee, for both teams to train from."""
    icp = versions.icp_in_force()
    roles = []
    if icp is not None:
        by_role = {}
        for persona in Persona.objects.filter(version=icp):
            by_role.setdefault(persona.buying_role, []).append(persona)
        roles = [
            (label, by_role[value])
            for value, label in Persona.BuyingRole.choices
            if value in by_role
        ]
    return render(
        request,
        "sla/agreement/personas.html",
        {
            "icp": icp,
            "roles": roles,
            "draft": IcpVersion.objects.filter(status=VersionStatus.DRAFT).first(),
        },
    )


@require_http_methods(["GET"])
def persona_detail(request, pk):
    """One persona: how to recognise, approach and answer them; the leads
    matched to it."""
    persona = get_object_or_404(
        Persona.objects.select_related("version").prefetch_related(
            Prefetch("version__personas", queryset=Persona.objects.only("pk", "name", "version"))
        ),
        pk=pk,
    )
    in_force = None
    if persona.version.status != VersionStatus.PUBLISHED:
        in_force = (
            Persona.objects.filter(
                version__status=VersionStatus.PUBLISHED, name__iexact=persona.name
            )
            .select_related("version")
            .first()
        )
    leads = Lead.objects.filter(persona=persona).select_related("account", "owner")
    return render(
        request,
        "sla/agreement/persona_detail.html",
        {
            "persona": persona,
            "in_force": in_force,
            "lead_count": leads.count(),
            "recent_leads": list(leads.order_by("-created_at", "-id")[:10]),
            "can_edit": persona.version.is_draft and versions.can_draft(request.user),
        },
    )
