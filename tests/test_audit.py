"""The audit log: who changed what, readable by RevOps admins only."""

import pytest
from django.urls import reverse

from config.models import AuditEntry
from leads import services
from leads.api_keys import api_key_create, api_key_revoke
from leads.models import LeadStage
from tests.factories import make_lead, make_opportunity, reason

pytestmark = pytest.mark.usefixtures("taxonomy")


def test_lead_and_deal_changes_are_audited(rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    services.lead_accept(lead=lead, actor=rep)
    services.lead_update(lead=lead, actor=rep, data={"title": "CIO"})
    deal = make_opportunity(owner=rep, stage="proposal")
    services.opportunity_move(
        opportunity=deal, actor=rep, to_stage="lost", loss_reason=reason("price")
    )
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor__username"))
    assert actions == [("lead.accept", "ray"), ("lead.edit", "ray"), ("opportunity.move", "ray")]
    move = AuditEntry.objects.get(action="opportunity.move")
    assert move.changes["stage"] == ["proposal", "lost"] and move.changes["loss_reason"] == "price"


def test_api_keys_are_audited(revops):
    api_key, _ = api_key_create(name="Forms", created_by=revops)
    api_key_revoke(api_key=api_key, actor=revops)
    api_key_revoke(api_key=api_key, actor=revops)  # already revoked: nothing new
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("id")) == [
        "api_key.create",
        "api_key.revoke",
    ]


def test_admin_changes_to_users_are_audited(client_for, revops, rep):
    client = client_for(revops)
    response = client.post(
        reverse("admin:auth_user_change", args=[rep.pk]),
        {"username": "ray", "first_name": "Raymond", "last_name": "", "email": rep.email,
         "is_active": "on", "groups": [g.pk for g in rep.groups.all()],
         "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
         "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="admin.change")
    assert entry.actor == revops and entry.object_repr == "ray"


@pytest.mark.parametrize("fixture_name, status", [("marketer", 403), ("rep", 403), ("revops", 200)])
def test_audit_page_is_for_revops_admins(request, client_for, fixture_name, status):
    user = request.getfixturevalue(fixture_name)
    response = client_for(user).get(reverse("audit_log"))
    assert response.status_code == status


def test_audit_page_filters_in_place(client_for, revops, rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep, first_name="Zed")
    services.lead_accept(lead=lead, actor=rep)
    response = client_for(revops).get(
        reverse("audit_log"), {"type": "leads.lead", "q": "Zed"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert "<html" not in body and "lead.accept" in body


def test_agreement_drafts_edits_and_publishing_are_audited(revops):
    from sla import versions
    from tests.sla_factories import make_icp, make_sla

    make_sla(), make_icp()
    draft = versions.sla_draft_create(actor=revops)
    versions.version_update(version=draft, actor=revops, data={"mql_threshold": 45})
    versions.version_publish(version=draft, actor=revops, changelog="Lower the bar.")
    entries = list(AuditEntry.objects.order_by("id").values_list("action", "changes"))
    assert [action for action, _ in entries] == ["sla.draft", "sla.edit", "sla.publish"]
    assert entries[1][1] == {"mql_threshold": [50, 45]}


def test_edits_to_a_drafts_parts_are_audited(revops):
    from sla import editor, versions
    from tests.sla_factories import make_icp, make_sla

    make_sla(), make_icp()
    draft = versions.icp_draft_create(actor=revops)
    persona = draft.personas.first()
    editor.persona_save(version=draft, actor=revops, persona=persona, data={"name": "IT chief"})
    editor.part_delete(part=draft.fit_rules.first(), actor=revops)
    entries = dict(AuditEntry.objects.values_list("action", "changes").order_by("id")[1:])
    assert entries["persona.edit"]["name"] == ["IT leader", "IT chief"]
    assert entries["fitrule.delete"] == {"version": draft.label}


def test_a_lead_added_by_hand_is_audited_with_what_was_entered(client_for, marketer):
    response = client_for(marketer).post(
        reverse("leads:lead_create"),
        {"email": "Ann@Acme.example", "first_name": "Ann", "company": "Acme", "channel": "events"},
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.object_type) == ("lead.create", marketer, "leads.lead")
    assert entry.changes["email"] == [None, "ann@acme.example"]
    assert entry.changes["first_name"] == [None, "Ann"]
    assert entry.changes["source_channel"] == [None, "events"]
    assert "title" not in entry.changes  # left empty


def test_leads_from_form_fills_are_not_audited_but_keep_their_stage_history(db):
    """No person made the change: the lead's "captured" stage row records it."""
    lead = services.lead_upsert(email="form@fill.example", data={"first_name": "Fay"}).lead
    assert not AuditEntry.objects.exists()
    assert lead.stage_changes.get().note == "Lead captured."


def test_routing_rules_and_settings_changed_in_the_admin_are_audited(client_for, revops, rep):
    from leads.models import Team
    from sla.models import RoutingRule, RoutingSettings

    team = Team.objects.create(name="East", region="East")
    settings_row = RoutingSettings.objects.create()
    client = client_for(revops)
    added = client.post(
        reverse("admin:sla_routingrule_add"),
        {"position": 1, "name": "Enterprise east", "team": team.pk, "is_active": "on",
         "segments": "", "regions": "East", "countries": "", "industries": ""},
    )  # fmt: skip
    assert added.status_code == 302, added.content.decode()[:3000]
    rule = RoutingRule.objects.get()
    changed = client.post(
        reverse("admin:sla_routingsettings_change", args=[settings_row.pk]),
        {"default_owner": rep.pk},
    )
    assert changed.status_code == 302, changed.content.decode()[:3000]
    deleted = client.post(reverse("admin:sla_routingrule_delete", args=[rule.pk]), {"post": "yes"})
    assert deleted.status_code == 302
    entries = list(
        AuditEntry.objects.order_by("id").values_list("action", "object_type", "actor__username")
    )
    assert entries == [
        ("admin.add", "sla.routingrule", "rosa"),
        ("admin.change", "sla.routingsettings", "rosa"),
        ("admin.delete", "sla.routingrule", "rosa"),
    ]
    assert "Default owner" in str(AuditEntry.objects.get(action="admin.change").changes["admin"])


def test_who_filter_lists_everyone_with_entries_staff_or_not(client_for, revops, rep, marketer):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    services.lead_accept(lead=lead, actor=rep)  # rep is not staff
    response = client_for(revops).get(reverse("audit_log"))
    actors = list(response.context["actors"])
    assert actors == [rep]  # marketer and revops changed nothing
    body = response.content.decode()
    assert f'<option value="{rep.pk}"' in body and f'<option value="{marketer.pk}"' not in body
