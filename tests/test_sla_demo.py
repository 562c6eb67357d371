"""`make demo`'s agreement (sla.demo.agreement_load): SLA v1 superseded by v2
with changelogs that say why, an ICP whose personas fit the demo's leads,
routing rules onto the sample's teams, and the agreement's pages for each
demo role; loading again adds nothing.

The whole demo takes most of a minute to load, and the agreement needs only
a part of it: the demo users, the sample's sales teams (the real loader)
and leads with the job titles the demo generates (one per title)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from config import demo as config_demo
from config.demo import DEMO_USERS
from leads import demo as leads_demo
from leads.models import Lead
from sla import demo as sla_demo
from sla import versions
from sla.models import (
    IcpVersion,
    Persona,
    RoutingRule,
    RoutingSettings,
    SlaVersion,
    VersionStatus,
)
from tests.factories import make_account, make_lead


@pytest.fixture
def demo_agreement(db):
    config_demo.demo_users_create()
    leads_demo.sales_people_load()
    account = make_account(industry="software", employees=5000)
    for title, _weight in leads_demo.TITLES:
        make_lead(title=title, account=account, employees=5000, segment="enterprise")
    sla_demo.agreement_load()


def test_the_demo_sla_history_says_why_it_changed(demo_agreement):
    v1, v2 = SlaVersion.objects.order_by("number")
    assert (v1.label, v1.status) == ("v1", VersionStatus.SUPERSEDED)
    assert (v2.label, v2.status) == ("v2", VersionStatus.PUBLISHED)
    assert versions.sla_in_force() == v2
    assert v2.based_on == v1 and v1.superseded_at == v2.published_at
    assert v1.changelog.startswith("First written agreement")
    assert v2.changelog.startswith("Why v2: ")
    assert "rejected a third of MQLs" in v2.changelog  # the reason, not only the change
    assert v2.published_by.username == v1.published_by.username == "revops"
    labels = {change.label for change in versions.version_diff(v1, v2)}
    assert {"MQL score threshold", "First contact for high-intent leads (business hours)",
            "MQLs per month"} <= labels  # fmt: skip


def test_the_demo_icp_personas_fit_the_demo_leads(demo_agreement):
    icp = IcpVersion.objects.get()
    assert icp.status == VersionStatus.PUBLISHED and versions.icp_in_force() == icp
    personas = list(icp.personas.all())
    assert len(personas) >= 3
    assert len({persona.buying_role for persona in personas}) >= 3
    assert all(p.pain_points and p.value_propositions and p.objections for p in personas)
    assert icp.fit_rules.exists()
    matched = dict(Lead.objects.filter(persona__isnull=False).values_list("persona__name", "title"))
    assert set(matched) == {persona.name for persona in personas}, matched


def test_the_demo_routes_onto_the_sample_teams(demo_agreement):
    rules = list(RoutingRule.objects.select_related("team"))
    assert [rule.name for rule in rules] == [name for name, _, _ in sla_demo.ROUTING]
    assert [rule.position for rule in rules] == sorted(rule.position for rule in rules)
    assert all(rule.is_active and rule.team.memberships.exists() for rule in rules)
    assert rules[0].segments == ["enterprise"] and rules[-1].segments == []  # a catch-all last
    assert RoutingSettings.objects.get().default_owner.username == "manager"


def test_loading_the_demo_agreement_again_adds_nothing(demo_agreement):
    counts = (SlaVersion.objects.count(), IcpVersion.objects.count(),
              Persona.objects.count(), RoutingRule.objects.count())  # fmt: skip
    sla_demo.agreement_load()
    assert counts == (2, 1, len(sla_demo.PERSONAS), len(sla_demo.ROUTING))
    assert counts == (SlaVersion.objects.count(), IcpVersion.objects.count(),
                      Persona.objects.count(), RoutingRule.objects.count())  # fmt: skip


@pytest.mark.parametrize("username", [row[0] for row in DEMO_USERS])
def test_the_agreement_pages_render_for_each_demo_role(demo_agreement, client, username):
    client.force_login(get_user_model().objects.get(username=username))
    v1, v2 = SlaVersion.objects.order_by("number")
    icp = IcpVersion.objects.get()
    persona = icp.personas.order_by("name").first()
    pages = {
        reverse("sla:version_list"): ["SLA v2", "SLA v1", "Superseded", "In force"],
        v2.get_absolute_url(): ["Why v2: ", "Based on"],
        v1.get_absolute_url(): ["First written agreement", "can no longer change"],
        reverse("sla:sla_diff", args=[v2.pk]): ["MQL score threshold"],
        reverse("sla:sla_impact", args=[v2.pk]): ["Impact of SLA v2"],
        icp.get_absolute_url(): [persona.name],
        reverse("sla:icp_diff", args=[icp.pk]): [persona.name],
        reverse("sla:personas"): [p.name for p in icp.personas.all()],
        persona.get_absolute_url(): [persona.name],
    }
    for url, expected in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.text
        for snippet in expected:
            assert snippet in text, (url, snippet)
