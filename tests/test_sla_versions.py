"""The agreement's versions as services: cloning drafts, immutability in the
model and in the database, publishing (only RevOps, serialised), the diff,
the editor's part services and the impact preview."""

import threading
from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config import roles
from sla import editor, impact, versions
from sla.models import (
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    ImmutableVersionError,
    Persona,
    RescoreJob,
    SlaVersion,
    VersionStatus,
)
from tests.factories import make_account, make_lead, make_touchpoint
from tests.sla_factories import make_icp, make_sla

CRITERIA = [("Pricing page 3+ in 7 days", ["page_view"], 3, 7)]


def _part_values(queryset, *fields):
    return sorted(tuple(str(getattr(row, f)) for f in fields) for row in queryset)


# --- Drafts ----------------------------------------------------------------------------------


def test_sla_draft_clones_every_field_and_part_of_the_version_in_force(db, marketer):
    source = make_sla(
        criteria=CRITERIA,
        mql_threshold=65,
        required_seniority="director",
        required_segments=["enterprise"],
        holidays=[timezone.now().date()],
        reassign_after_hours=Decimal("4"),
        mql_commitment_smb=40,
    )
    draft = versions.sla_draft_create(actor=marketer)

    assert draft.status == VersionStatus.DRAFT
    assert draft.number == source.number + 1
    assert draft.based_on == source
    assert draft.created_by == marketer
    for name, value in versions._copy_fields(source).items():
        assert getattr(draft, name) == value, name
    assert draft.changelog == ""  # every version says what it changes
    assert _part_values(draft.groups.all(), "name", "cap") == _part_values(
        source.groups.all(), "name", "cap"
    )

    def rules(version):
        return sorted(
            (r.touchpoint_type, r.asset_stage, r.points, r.group.name)
            for r in version.engagement_rules.select_related("group")
        )

    assert rules(draft) == rules(source)
    # The draft's rules point at the draft's own groups.
    assert set(draft.engagement_rules.values_list("group__version", flat=True)) == {draft.pk}
    criterion_fields = ("label", "touchpoint_types", "asset_stage", "asset_kind", "min_count",
                        "within_days")  # fmt: skip
    assert _part_values(draft.behaviour_criteria.all(), *criterion_fields) == _part_values(
        source.behaviour_criteria.all(), *criterion_fields
    )


def test_icp_draft_clones_fit_rules_and_personas(db, manager):
    source = make_icp()
    draft = versions.icp_draft_create(actor=manager)
    assert draft.based_on == source and draft.max_fit_points == source.max_fit_points
    fit_fields = ("attribute", "values", "min_value", "max_value", "points")
    assert _part_values(draft.fit_rules.all(), *fit_fields) == _part_values(
        source.fit_rules.all(), *fit_fields
    )
    persona_fields = ("name", "buying_role", "title_keywords", "summary", "pain_points",
                      "value_propositions", "proof_points", "objections")  # fmt: skip
    assert _part_values(draft.personas.all(), *persona_fields) == _part_values(
        source.personas.all(), *persona_fields
    )


def test_reps_cannot_draft(db, rep):
    make_sla()
    with pytest.raises(PermissionDenied):
        versions.sla_draft_create(actor=rep)
    with pytest.raises(PermissionDenied):
        versions.icp_draft_create(actor=rep)
    assert SlaVersion.objects.count() == 1


# --- Immutability --------------------------------------------------------------------------------


def test_the_model_refuses_to_change_a_published_version_or_its_parts(db, revops):
    sla = make_sla()
    sla.mql_threshold = 10
    with pytest.raises(ImmutableVersionError):
        sla.save()
    rule = sla.engagement_rules.first()
    rule.points = 49
    with pytest.raises(ImmutableVersionError):
        rule.save()
    with pytest.raises(ImmutableVersionError):
        EngagementGroup(version=sla, name="new", cap=5).save()
    with pytest.raises(versions.VersionError):
        versions.version_update(version=sla, actor=revops, data={"mql_threshold": 10})
    with pytest.raises(versions.VersionError):
        editor.engagement_rule_save(version=sla, actor=revops, rule=rule, data={"points": 3})
    sla.refresh_from_db()
    assert sla.mql_threshold == 50
    assert sla.engagement_rules.filter(points=49).count() == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sla_slaversion SET mql_threshold = 10 WHERE id = %(sla)s",
        "UPDATE sla_slaversion SET status = 'draft' WHERE id = %(sla)s",
        "DELETE FROM sla_slaversion WHERE id = %(sla)s",
        "UPDATE sla_engagementrule SET points = 49 WHERE version_id = %(sla)s",
        "DELETE FROM sla_engagementgroup WHERE version_id = %(sla)s",
        "INSERT INTO sla_behaviourcriterion (version_id, label, touchpoint_types, asset_stage,"
        " asset_kind, min_count, within_days) VALUES (%(sla)s, 'x', '{page_view}', '', '', 1, 1)",
        "UPDATE sla_icpversion SET max_fit_points = 99 WHERE id = %(icp)s",
        "UPDATE sla_fitrule SET points = 1 WHERE version_id = %(icp)s",
        "UPDATE sla_persona SET objections = 'none' WHERE version_id = %(icp)s",
    ],
)
def test_the_database_refuses_raw_changes_to_published_versions(db, statement):
    ids = {"sla": make_sla().pk, "icp": make_icp().pk}
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, ids)


def test_the_database_lets_a_published_version_become_superseded_only(db):
    sla = make_sla()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sla_slaversion SET status = 'superseded', superseded_at = now() WHERE id = %s",
            [sla.pk],
        )
    sla.refresh_from_db()
    assert sla.status == VersionStatus.SUPERSEDED
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE sla_slaversion SET status = 'published' WHERE id = %s", [sla.pk])


# --- Publishing ------------------------------------------------------------------------------------


def test_publish_supersedes_the_version_in_force_and_queues_a_rescore(
    db, marketer, revops, django_capture_on_commit_callbacks
):
    v1 = make_sla()
    make_icp()
    draft = versions.sla_draft_create(actor=marketer)
    with django_capture_on_commit_callbacks() as callbacks:
        versions.version_publish(version=draft, actor=revops, changelog="Lower the bar.")
    v1.refresh_from_db()
    draft.refresh_from_db()
    assert v1.status == VersionStatus.SUPERSEDED and v1.superseded_at is not None
    assert draft.status == VersionStatus.PUBLISHED
    assert draft.published_by == revops and draft.published_at is not None
    assert draft.changelog == "Lower the bar."
    assert versions.sla_in_force() == draft
    job = RescoreJob.objects.get()
    assert job.sla_version == draft and job.finished_at is None
    assert len(callbacks) == job.lane_count  # re-score tasks, sent once the publish commits


@pytest.mark.parametrize("role", ["marketer", "manager", "rep"])
def test_only_revops_admins_publish(db, request, role):
    make_sla()
    user = request.getfixturevalue(role)
    draft = versions.sla_draft_create(actor=request.getfixturevalue("revops"))
    with pytest.raises(PermissionDenied):
        versions.version_publish(version=draft, actor=user, changelog="Mine.")
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


@pytest.mark.parametrize("changelog", ["", "   \n "])
def test_publishing_needs_a_changelog(db, revops, changelog):
    make_sla()
    draft = versions.sla_draft_create(actor=revops)
    with pytest.raises(versions.VersionError, match="changelog"):
        versions.version_publish(version=draft, actor=revops, changelog=changelog)
    assert versions.sla_in_force() != draft


def test_a_published_version_cannot_be_published_again_or_discarded(db, revops):
    sla = make_sla()
    with pytest.raises(versions.VersionError):
        versions.version_publish(version=sla, actor=revops, changelog="Again.")
    with pytest.raises(versions.VersionError):
        versions.version_discard(version=sla, actor=revops)
    assert SlaVersion.objects.filter(pk=sla.pk, status=VersionStatus.PUBLISHED).exists()


def test_a_draft_cloned_from_a_version_no_longer_in_force_is_not_published(db, marketer, revops):
    """Two drafts of v1; v3 is published first. Publishing v2 would put v1's
    text back with v2's edits, undoing v3: refused, with what to do."""
    v1 = make_sla(mql_threshold=50)
    make_icp()
    old = versions.sla_draft_create(actor=marketer)
    versions.version_update(version=old, actor=marketer, data={"mql_threshold": 45})
    newer = versions.sla_draft_create(actor=marketer)
    versions.version_update(version=newer, actor=marketer, data={"response_hours_standard": 8})
    assert versions.draft_staleness(old) == ""
    versions.version_publish(version=newer, actor=revops, changelog="Answer within 8 hours.")

    message = versions.draft_staleness(old)
    assert message.startswith(f"This draft was cloned from {v1.label}; {newer.label} has been "
                              "published since.")  # fmt: skip
    assert f"Clone {newer.label} again" in message
    with pytest.raises(versions.VersionError) as refused:
        versions.version_publish(version=old, actor=revops, changelog="Lower the bar.")
    assert str(refused.value) == message
    old.refresh_from_db()
    assert old.is_draft and old.mql_threshold == 45 and not old.changelog
    assert versions.sla_in_force() == newer
    newer.refresh_from_db()
    assert versions.draft_staleness(newer) == ""  # published: nothing to say
    # A draft cloned again from the version in force publishes.
    again = versions.sla_draft_create(actor=marketer)
    versions.version_publish(version=again, actor=revops, changelog="Lower the bar.")
    assert versions.sla_in_force() == again


def test_an_icp_draft_started_before_another_was_published_is_not_published(db, revops):
    scratch = versions.icp_draft_create(actor=revops)  # nothing in force yet
    FitRule.objects.create(version=scratch, attribute="industry", values=["software"], points=5)
    first = make_icp()  # in force meanwhile
    assert "was started from scratch; " + first.label in versions.draft_staleness(scratch)
    with pytest.raises(versions.VersionError, match="has been published since"):
        versions.version_publish(version=scratch, actor=revops, changelog="Mine.")
    assert versions.icp_in_force() == first


def overlapping_bands(version):
    """What the admin's inlines allow: each row valid, the two overlapping."""
    FitRule.objects.create(version=version, attribute="employees", min_value=100,
                           max_value=1000, points=5)  # fmt: skip
    FitRule.objects.create(version=version, attribute="employees", min_value=500, points=8)


def test_an_icp_draft_with_overlapping_bands_is_not_published(db, marketer, revops):
    make_sla(), make_icp()
    draft = versions.icp_draft_create(actor=marketer)
    FitRule.objects.filter(version=draft, attribute="employees").delete()
    overlapping_bands(draft)
    with pytest.raises(ValidationError) as refused:
        versions.version_publish(version=draft, actor=revops, changelog="Bands.")
    (message,) = refused.value.messages
    assert message.startswith("Fix this before publishing: Employees between 100–1,000 and 500–any")
    draft.refresh_from_db()
    assert draft.is_draft
    FitRule.objects.filter(version=draft, min_value=500).update(min_value=1001)
    versions.version_publish(version=draft, actor=revops, changelog="Bands.")
    assert versions.icp_in_force() == draft


def test_publishing_rechecks_what_the_editor_refuses_in_every_row(db, marketer, revops):
    make_sla(), make_icp()
    icp = versions.icp_draft_create(actor=marketer)
    FitRule.objects.create(version=icp, attribute="industry", values=[], points=5)
    FitRule.objects.create(version=icp, attribute="segment", values=["Mid-market"], points=5)
    Persona.objects.filter(version=icp, name="Procurement").update(title_keywords=[])
    with pytest.raises(ValidationError) as refused:
        versions.version_publish(version=icp, actor=revops, changelog="Rows.")
    problems = " | ".join(refused.value.messages)
    assert "Fit rule “Industry is one of ”, values: List at least one value." in problems
    assert "not a segment: Mid-market" in problems
    assert "Persona “Procurement”, title keywords: This field cannot be blank." in problems

    sla = versions.sla_draft_create(actor=marketer)
    SlaVersion.objects.filter(pk=sla.pk).update(
        mql_commitment_per_month=100, mql_commitment_enterprise=80, mql_commitment_smb=30
    )
    other_group = EngagementGroup.objects.filter(version__status="published").first()
    EngagementRule.objects.filter(version=sla, touchpoint_type="page_view").update(
        group=other_group
    )
    with pytest.raises(ValidationError) as refused:
        versions.version_publish(version=sla, actor=revops, changelog="Rows.")
    problems = " | ".join(refused.value.messages)
    assert "segment commitments add up to more than the monthly total" in problems
    assert "Engagement rule “Page view: +2”: its group belongs to v1." in problems
    assert SlaVersion.objects.get(pk=sla.pk).is_draft


@pytest.mark.django_db(transaction=True)
def test_two_admins_publishing_at_once_leave_exactly_one_version_in_force(make_user):
    """Two drafts cloned from v1, two threads, one barrier: the advisory lock
    serialises the publishes, so one draft goes in force (v1 superseded) and
    the other, no longer cloned from the version in force, is refused
    instead of silently undoing the first."""
    admin = make_user("rosa", roles.REVOPS_ADMIN)
    v1 = make_sla()
    drafts = [versions.sla_draft_create(actor=admin, title=f"Draft {n}") for n in (1, 2)]
    barrier = threading.Barrier(2)
    errors = []

    def publish(draft):
        try:
            barrier.wait(timeout=10)
            versions.version_publish(version=draft, actor=admin, changelog=f"{draft.title}.")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=publish, args=(draft,)) for draft in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    (refusal,) = errors
    assert isinstance(refusal, versions.VersionError)
    assert "v1; " in str(refusal) and "has been published since" in str(refusal)
    statuses = dict(SlaVersion.objects.values_list("pk", "status"))
    assert statuses.pop(v1.pk) == VersionStatus.SUPERSEDED
    assert sorted(statuses.values()) == [VersionStatus.DRAFT, VersionStatus.PUBLISHED]


# --- The diff -------------------------------------------------------------------------------------


def test_diff_lists_changed_fields_and_parts_with_readable_labels(db, marketer):
    v1 = make_sla(criteria=CRITERIA, mql_threshold=60)
    draft = versions.sla_draft_create(actor=marketer)
    versions.version_update(
        version=draft,
        actor=marketer,
        data={"mql_threshold": 45, "calendar_time_zone": "Europe/Berlin",
              "working_days": [0, 1, 2, 3]},
    )  # fmt: skip
    web = draft.groups.get(name="web")
    editor.engagement_rule_save(
        version=draft, actor=marketer, data={"touchpoint_type": "email_click", "asset_stage": "",
                                             "points": 3, "group": web},
    )  # fmt: skip
    editor.part_delete(part=draft.behaviour_criteria.get(), actor=marketer)

    changes = {(c.section, c.label): (c.before, c.after) for c in versions.version_diff(v1, draft)}

    assert changes[("Qualification", "MQL score threshold")] == ("60", "45")
    assert changes[("Sales commitments", "Time zone of the business calendar")] == (
        "UTC",
        "Europe/Berlin",
    )
    assert changes[("Sales commitments", "Working days")][1] == "Mon, Tue, Wed, Thu"
    assert changes[("Engagement points", "Email clicked")] == ("—", "+3 points, group web")
    before, after = changes[("Behavioural criteria", "Pricing page 3+ in 7 days")]
    assert before == "3+ of page view in 7 days" and after == "—"
    assert len(changes) == 5
    assert versions.previous_version(draft) == v1


def test_diff_of_personas_is_field_by_field(db, marketer):
    v1 = make_icp()
    draft = versions.icp_draft_create(actor=marketer)
    persona = draft.personas.get(name="IT leader")
    editor.persona_save(
        version=draft, actor=marketer, persona=persona,
        data={"objections": "Too expensive: show the three-year cost."},
    )  # fmt: skip
    changes = [(c.section, c.label, c.after) for c in versions.version_diff(v1, draft)]
    assert changes == [
        ("Personas", "Persona “IT leader”: objections", "Too expensive: show the three-year cost.")
    ]


# --- The editor's part services ------------------------------------------------------------------


def test_overlapping_fit_bands_are_refused_and_nothing_is_written(db, marketer):
    make_icp()
    draft = versions.icp_draft_create(actor=marketer)
    band = {"attribute": "employees", "min_value": Decimal(500), "max_value": Decimal(2000),
            "points": 5}  # fmt: skip
    with pytest.raises(ValidationError, match="overlap"):
        editor.fit_rule_save(version=draft, actor=marketer, data=band)  # 1000+ exists
    assert not draft.fit_rules.filter(points=5).exists()
    # A band ending below the existing one's start is fine; lists keep no bounds.
    editor.fit_rule_save(version=draft, actor=marketer, data={**band, "max_value": Decimal(999)})
    rule = editor.fit_rule_save(
        version=draft, actor=marketer,
        data={"attribute": "region", "values": ["EMEA"], "min_value": Decimal(1), "points": 3},
    )  # fmt: skip
    assert rule.min_value is None and rule.values == ["EMEA"]


def test_a_section_rearranging_bands_is_judged_on_its_result(db, marketer):
    draft = versions.icp_draft_create(actor=marketer)
    low = editor.fit_rule_save(
        version=draft, actor=marketer,
        data={"attribute": "employees", "min_value": 1, "max_value": 99, "points": 1},
    )  # fmt: skip
    high = editor.fit_rule_save(
        version=draft, actor=marketer,
        data={"attribute": "employees", "min_value": 100, "max_value": None, "points": 5},
    )  # fmt: skip
    # Move the boundary: saved one by one, the first change would overlap the second.
    editor.draft_section_save(
        version=draft, actor=marketer,
        changes=editor.SectionChanges(saves=[(low, {"max_value": Decimal(199)}),
                                             (high, {"min_value": Decimal(200)})]),
    )  # fmt: skip
    assert sorted(draft.fit_rules.values_list("min_value", "max_value")) == [
        (Decimal(1), Decimal(199)),
        (Decimal(200), None),
    ]
    with pytest.raises(ValidationError):
        editor.draft_section_save(
            version=draft, actor=marketer,
            changes=editor.SectionChanges(fields={"max_fit_points": 30},
                                          saves=[(high, {"min_value": Decimal(150)})]),
        )  # fmt: skip
    draft.refresh_from_db()
    assert draft.max_fit_points == 40  # all or nothing


def test_a_group_with_rules_is_not_deleted(db, marketer):
    make_sla()
    draft = versions.sla_draft_create(actor=marketer)
    with pytest.raises(ValidationError, match="still holds"):
        editor.part_delete(part=draft.groups.get(name="web"), actor=marketer)
    empty = editor.engagement_group_save(
        version=draft, actor=marketer, data={"name": "events", "cap": 10}
    )
    editor.part_delete(part=empty, actor=marketer)
    assert not EngagementGroup.objects.filter(pk=empty.pk).exists()


def test_part_services_check_role_version_and_ownership(db, marketer, rep):
    sla = make_sla()
    draft = versions.sla_draft_create(actor=marketer)
    with pytest.raises(PermissionDenied):
        editor.engagement_group_save(version=draft, actor=rep, data={"name": "x", "cap": 1})
    with pytest.raises(ValidationError, match="groups"):  # a group of another version
        editor.engagement_rule_save(
            version=draft, actor=marketer,
            data={"touchpoint_type": "chat", "asset_stage": "", "points": 1,
                  "group": sla.groups.first()},
        )  # fmt: skip
    with pytest.raises(ValidationError, match="another version"):
        editor.behaviour_criterion_save(
            version=draft, actor=marketer, criterion=BehaviourCriterion(version=sla, pk=10**9),
            data={"label": "x"},
        )  # fmt: skip


def test_persona_names_are_unique_in_a_version(db, marketer):
    make_icp()
    draft = versions.icp_draft_create(actor=marketer)
    with pytest.raises(ValidationError) as caught:
        editor.persona_save(
            version=draft, actor=marketer,
            data={"name": "it LEADER", "buying_role": "champion", "title_keywords": ["cto"]},
        )  # fmt: skip
    assert "name" in caught.value.error_dict
    assert Persona.objects.filter(version=draft).count() == 2


# --- The impact preview ----------------------------------------------------------------------


def _enterprise_lead(**fields):
    account = make_account(industry="software", employees=5000)
    return make_lead(account=account, employees=5000, segment="enterprise", **fields)


@pytest.fixture
def scored_leads(db):
    """Under SLA v1 (threshold 50) and ICP v1: `fit` scores 40 (below), `both`
    50 (qualifies), `none` 0, and `old` (40) was created before the period."""
    sla, icp = make_sla(mql_threshold=50, mql_commitment_per_month=2), make_icp()
    now = timezone.now()
    leads = {
        "fit": _enterprise_lead(title="Engineer"),
        "both": _enterprise_lead(title="Engineer"),
        "none": make_lead(title="Student", employees=3),
        "old": _enterprise_lead(created_at=now - timedelta(days=120)),
    }
    make_touchpoint(leads["both"], type="content_download", occurred_at=now)
    return sla, icp, leads


def test_impact_counts_draft_and_in_force_per_month_and_samples_who_changes_side(
    scored_leads, marketer, monkeypatch
):
    _, _, leads = scored_leads
    monkeypatch.setattr(impact, "CHUNK_SIZE", 2)  # several chunks
    draft = versions.sla_draft_create(actor=marketer)
    versions.version_update(
        version=draft, actor=marketer, data={"mql_threshold": 35, "mql_commitment_per_month": 1}
    )

    result = impact.impact_preview(draft_sla=draft)

    assert result["available"] and result["has_current"]
    assert result["totals"] == {"leads": 3, "draft": 2, "current": 1}
    assert result["gained_count"] == 1 and result["lost_count"] == 0
    (gained,) = result["gained"]
    assert gained.pk == leads["fit"].pk
    assert (gained.draft_score, gained.current_score) == (40, 40)
    this_month = timezone.localtime().date().replace(day=1)
    row = next(row for row in result["months"] if row["month"] == this_month)
    assert (row["leads"], row["draft"], row["current"]) == (3, 2, 1)
    assert (row["draft_commitment"], row["current_commitment"]) == (1, 2)
    assert row["draft_meets"] and not row["current_meets"]
    assert 3 <= len(result["months"]) <= 4  # 90 days touch three or four calendar months


def test_impact_of_a_stricter_icp_shows_who_drops_out(scored_leads, marketer):
    sla, _, leads = scored_leads
    draft = versions.icp_draft_create(actor=marketer)
    draft.fit_rules.filter(attribute="industry").delete()
    result = impact.impact_preview(draft_icp=draft, sample=5)
    assert result["sla"] == sla and result["icp"] == draft
    assert [lead.pk for lead in result["lost"]] == [leads["both"].pk]
    assert result["totals"]["draft"] == 0


def test_impact_reuses_what_it_evaluated_until_a_version_is_published(
    scored_leads, marketer, revops, monkeypatch
):
    """The draft's figures are cached (tests/test_sla_impact.py: under its
    content), the in-force side per lead for every draft."""
    sla, _, _ = scored_leads
    cache.clear()
    evaluated = []
    real_evaluate = impact.evaluate

    def counting_evaluate(lead_ids, **kwargs):
        evaluated.append((kwargs["sla"], len(lead_ids)))
        return real_evaluate(lead_ids, **kwargs)

    monkeypatch.setattr(impact, "evaluate", counting_evaluate)
    draft = versions.sla_draft_create(actor=marketer)
    versions.version_update(version=draft, actor=marketer, data={"mql_threshold": 35})
    first = impact.impact_preview(draft_sla=draft)
    assert evaluated == [(draft, 3), (sla, 3)]

    evaluated.clear()  # again: nothing is evaluated
    second = impact.impact_preview(draft_sla=draft)
    assert evaluated == []
    assert second["totals"] == first["totals"] == {"leads": 3, "draft": 2, "current": 1}
    assert second["in_force_as_of"] == first["in_force_as_of"]
    assert second["as_of"] == first["as_of"]

    evaluated.clear()  # a new lead: evaluated on both sides, alone
    make_lead(title="Student", employees=3)
    assert impact.impact_preview(draft_sla=draft)["totals"]["leads"] == 4
    assert evaluated == [(draft, 1), (sla, 1)]

    evaluated.clear()  # another draft: the draft, and the lead the in-force side lacks
    other = versions.sla_draft_create(actor=marketer)
    assert impact.impact_preview(draft_sla=other)["totals"]["leads"] == 4
    assert evaluated == [(other, 4), (sla, 1)]
    other.delete()

    versions.version_publish(version=draft, actor=revops, changelog="Threshold 35.")
    evaluated.clear()  # another version in force: evaluated afresh
    following = versions.sla_draft_create(actor=marketer)
    assert impact.impact_preview(draft_sla=following)["totals"]["current"] == 2
    assert evaluated == [(following, 4), (draft, 4)]


def test_impact_needs_the_other_kind_in_force(db, marketer):
    draft = versions.sla_draft_create(actor=marketer)
    result = impact.impact_preview(draft_sla=draft)
    assert not result["available"] and "ICP" in result["reason"]


def test_first_sla_draft_has_a_working_calendar(db, marketer):
    draft = versions.sla_draft_create(actor=marketer)
    assert draft.working_days == [0, 1, 2, 3, 4]
    assert (draft.day_starts, draft.day_ends) == (time(9), time(17))
    assert IcpVersion.objects.count() == 0
    assert FitRule.objects.count() == 0
