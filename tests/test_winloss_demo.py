"""`make demo`'s retrospectives: a dozen on closed deals above the threshold,
both teams in each, action items against every kind of target, some closed
by SLA v2; loading again adds nothing."""

from django.db.models import Count

from config import demo as config_demo
from leads import demo as leads_demo
from reporting import winloss_selectors as selectors
from reporting.models import ActionItem, Retrospective, RetrospectiveParticipant
from reporting.winloss_demo import winloss_load
from sla import demo as sla_demo
from sla.models import SlaVersion
from tests.winloss_factories import driver_categories_seed


def test_demo_retrospectives(taxonomy):
    driver_categories_seed()
    config_demo.demo_users_create()
    leads_demo.demo_load()
    sla_demo.agreement_load()
    winloss_load()

    v2 = SlaVersion.objects.get(number=2)
    retros = Retrospective.objects.select_related("opportunity")
    assert retros.count() == 12
    assert {r.outcome for r in retros} == {"won", "lost"}
    assert {r.loss_type for r in retros if r.outcome == "lost"} == {
        "competitor", "no_decision", "unknown",
    }  # fmt: skip
    for retro in retros:
        assert retro.opportunity.stage == retro.outcome
        assert retro.opportunity.amount > v2.retro_amount_threshold
        assert retro.drivers.exists() and retro.learnings
        teams = set(retro.participant_rows.values_list("team", flat=True))
        assert {"marketing", "sales"} <= teams
    assert RetrospectiveParticipant.objects.filter(user__username="rep").exists()

    kinds = dict(ActionItem.objects.values_list("target_kind").annotate(n=Count("id")))
    assert {"sla", "icp", "persona", "campaign", "asset", "other"} <= set(kinds)
    closed_by_v2 = ActionItem.objects.filter(closed_by_sla_version=v2)
    assert closed_by_v2.count() == 3
    assert all(item.closed_at == v2.published_at for item in closed_by_v2)
    assert selectors.action_items_open().count() >= 5

    winloss_load()  # idempotent
    assert Retrospective.objects.count() == 12
