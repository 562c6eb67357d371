"""Demo win/loss retrospectives: a dozen realistic reviews of closed demo deals
above the SLA's threshold, with decision drivers, quotes, learnings and action
items. Four were held under SLA v1 and led to SLA v2 (their action items are
closed by it); eight are recent, with action items open against the ICP, a
persona, a campaign, content and the SLA in force.

Written through the same services users go through, then back-dated (held
when the deal closed, action items closed when v2 was published).
Deterministic and idempotent: skipped when retrospectives exist.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leads.models import Campaign, Competitor, ContentAsset, Opportunity
from reporting import winloss_services as services
from reporting.models import ActionItem, DriverCategory, Retrospective
from sla.models import IcpVersion, Persona, SlaVersion

H, X = "helped", "hurt"


@dataclass
class Action:
    title: str
    target_kind: str
    target: str = ""  # "v1", "v2", "icp", a persona, campaign or asset name, or free text
    owner: str = "marketing"
    due_in_days: int = 21  # after the retrospective
    status: str = "open"
    closed_by_v2: bool = False
    description: str = ""


@dataclass
class Scenario:
    outcome: str
    when: str  # "before_v2" (held under SLA v1) or "recent"
    drivers: list
    learnings: str
    quotes: str
    decided_at: str
    loss_type: str = ""
    competitor: str = ""
    pitch: str = "yes"
    pitch_difference: str = ""
    campaign: str = ""  # compared with the pitch when the deal's lead came from none
    owner_is_demo_rep: bool = False
    with_manager: bool = False
    held_after_days: int = 6
    actions: list = field(default_factory=list)


SCENARIOS = (
    Scenario(
        "lost", "before_v2", loss_type="competitor", competitor="Northwind Systems",
        decided_at="demo", with_manager=True,
        drivers=[
            ("sales-process", X, "The demo request waited three business days for a call back; "
             "Northwind had shown their fleet the same afternoon."),
            ("competitive-positioning", X, "By our first call the buyer was comparing us on "
             "Northwind's checklist."),
            ("product-fit", H, "GTX Plus Pro met every requirement on their list."),
        ],
        quotes="By the time you called back we had already seen Northwind's demo.\n"
               "Your spec sheet was better, honestly.",
        learnings="Hand-raisers go cold within hours, not days. A 4-hour response target "
                  "on paper became 3 days in practice because nobody saw the request in time.",
        actions=[Action("Answer demo and contact requests within 1 business hour", "sla", "v1",
                        owner="manager", status="done", closed_by_v2=True,
                        description="Shorten the high-intent response time in the next SLA.")],
    ),
    Scenario(
        "won", "before_v2", competitor="Contoso Devices", decided_at="demo",
        drivers=[
            ("sales-process", H, "Rep called within the hour of the demo request and booked the "
             "demo for the next morning."),
            ("product-fit", H, "Docking and fleet management matched their hybrid setup."),
            ("relationship", H, "The IT director had used our devices at a previous company."),
        ],
        quotes="You were the only vendor who called the same day.",
        learnings="Speed to first contact decided this one as much as the product did. When a "
                  "high-intent lead waits, someone should notice before the buyer does.",
        actions=[Action("Tell the manager at a response breach; reassign after 8 business hours",
                        "sla", "v1", owner="revops", status="done", closed_by_v2=True)],
    ),
    Scenario(
        "lost", "before_v2", loss_type="no_decision", decided_at="discovery",
        pitch="partly", campaign="Webinar: total cost of ownership",
        pitch_difference="The campaign promised lower total cost of ownership; the first call "
                         "was about processor specs.",
        drivers=[
            ("timing", X, "They were researching for next year; no project, no budget owner."),
            ("messaging", X, "One blog download made this an MQL at 70 points."),
        ],
        quotes="We're just looking at options for now.",
        learnings="A score reached on content alone is not buying intent. Sales spent three "
                  "calls on a lead that had never looked at pricing.",
        actions=[Action("Qualify on buying behaviour (pricing page, bottom-funnel content), not "
                        "the score alone", "sla", "v1", status="done", closed_by_v2=True)],
    ),
    Scenario(
        "won", "before_v2", decided_at="negotiation", with_manager=True,
        drivers=[
            ("pricing-packaging", H, "The 3-year bundle with on-site service fitted their "
             "capex rules."),
            ("relationship", H, "Procurement trusted the rep after a smooth pilot."),
        ],
        quotes="The bundle made it an easy yes for finance.",
        learnings="Procurement buys the package, not the device: show the 3-year bundle early.",
        actions=[Action("Show the 3-year bundle on the pricing page", "asset", "Pricing",
                        status="done")],
    ),
    Scenario(
        "lost", "recent", loss_type="competitor", competitor="Northwind Systems",
        decided_at="negotiation", with_manager=True,
        drivers=[
            ("pricing-packaging", X, "Northwind undercut us by 12% with a bundled service plan."),
            ("competitive-positioning", X, "We never showed our service costs over three "
             "years; they compared unit prices."),
            ("relationship", H, "The champion fought for us until the end."),
        ],
        quotes="Your service is better, but finance only looked at the unit price.",
        learnings="Against Northwind, put the 3-year cost with service on the table before "
                  "the proposal, or finance decides on the unit price.",
        actions=[Action("Add service-plan costs to the ROI calculator", "asset",
                        "ROI calculator", due_in_days=30)],
    ),
    Scenario(
        "won", "recent", competitor="Fabrikam Hardware", decided_at="demo",
        owner_is_demo_rep=True,
        drivers=[
            ("product-fit", H, "Hybrid-work docking solved their hot-desk problem."),
            ("sales-process", H, "Demo tailored to their floor plan."),
            ("messaging", H, "The hybrid work fleets webinar framed the need before our first "
             "call."),
        ],
        quotes="The webinar described our office exactly.",
        learnings="Leads from the hybrid-work webinar arrive with the problem already framed; "
                  "reps can skip straight to the demo.",
        actions=[Action("Use the hybrid fleets webinar in the GTX upgrade nurture", "campaign",
                        "Nurture: GTX upgrade path", status="in_progress")],
    ),
    Scenario(
        "lost", "recent", loss_type="no_decision", decided_at="proposal",
        owner_is_demo_rep=True, with_manager=True,
        drivers=[
            ("timing", X, "Budget frozen until the next fiscal year."),
            ("product-fit", H, "They liked the GTX Pro."),
        ],
        quotes="Come back in Q1. We love the GTX Pro, but there is no budget this year.",
        learnings="We learnt about the budget cycle at the proposal. Ask in discovery.",
        actions=[Action("Add the budget-cycle question to the Procurement lead persona",
                        "persona", "Procurement lead", owner="manager", due_in_days=14)],
    ),
    Scenario(
        "lost", "recent", loss_type="competitor", competitor="Contoso Devices",
        decided_at="demo", pitch="no", campaign="LinkedIn: IT leaders",
        pitch_difference="The ads promised “a device for every worker”; we have nothing "
                         "rugged for the warehouse floor.",
        drivers=[
            ("product-fit", X, "They needed rugged devices for the warehouse; we do not sell any."),
            ("messaging", X, "Our ads promised a device for every worker."),
        ],
        quotes="Your ad said every worker. Half of ours work in a warehouse.",
        learnings="Warehouse-heavy accounts fit our ICP on paper but not our product line.",
        actions=[Action("Score logistics and warehouse-heavy accounts lower until we sell "
                        "rugged devices", "icp", "icp", due_in_days=28)],
    ),
    Scenario(
        "won", "recent", competitor="Tailspin Computing", decided_at="proposal",
        drivers=[
            ("competitive-positioning", H, "Rangreen's 2,000-seat rollout proved we scale."),
            ("relationship", H, "Reference call with Rangreen's IT director."),
            ("pricing-packaging", X, "Our list price was higher; we held it."),
        ],
        quotes="The Rangreen reference settled it.",
        learnings="Enterprise buyers want proof at their scale; the Rangreen case study did "
                  "more than any discount.",
        actions=[Action("Put the Rangreen case study in the enterprise proposal template",
                        "other", "Enterprise proposal template", owner="manager")],
    ),
    Scenario(
        "lost", "recent", loss_type="unknown", decided_at="negotiation", with_manager=True,
        drivers=[
            ("sales-process", X, "Single-threaded: the champion left and nobody else knew us."),
            ("relationship", X, "No contact with the economic buyer."),
        ],
        quotes="",
        learnings="Every deal above the review threshold needs at least the IT leader and the "
                  "procurement lead engaged.",
        actions=[Action("Multi-thread every deal above $5,000: IT leader and procurement lead",
                        "other", "Sales playbook", owner="manager", due_in_days=-3)],
    ),
    Scenario(
        "won", "recent", decided_at="negotiation", held_after_days=19,
        drivers=[
            ("pricing-packaging", H, "Quarterly billing broke the budget deadlock."),
            ("timing", H, "Their old fleet's warranty ran out this quarter."),
        ],
        quotes="Quarterly billing is what got it through finance.",
        learnings="Quarterly billing answers the budget objection procurement raises most.",
        actions=[
            Action("Lead the procurement retargeting ads with quarterly billing", "campaign",
                   "LinkedIn: procurement retargeting"),
            Action("Give demo requests from existing customers the high-intent clock", "sla",
                   "v2", owner="revops", due_in_days=45),
        ],
    ),
    Scenario(
        "lost", "recent", loss_type="competitor", competitor="Northwind Systems",
        decided_at="proposal",
        drivers=[
            ("pricing-packaging", X, "Northwind matched the spec at a lower unit price."),
            ("competitive-positioning", X, "No answer ready to Northwind's bundle."),
            ("sales-process", H, "Fast, thorough proposal."),
        ],
        quotes="It came down to price.",
        learnings="Second Northwind loss on price this quarter: compete on 3-year cost, not "
                  "on unit price.",
        actions=[Action("Match Northwind's unit price on GTX Plus Pro", "other", "Price list",
                        owner="manager", status="dropped",
                        description="Dropped: we compete on 3-year cost (see the ROI "
                                    "calculator item), not unit price.")],
    ),
)  # fmt: skip


def _deal(scenario: Scenario, *, v2: SlaVersion, used: set, rep) -> Opportunity | None:
    """The scenario's deal: closed with its outcome above the threshold, in its
    window; preferably one that came from a lead (so its story shows) and
    matches the way it was lost."""
    today = timezone.localdate()
    v2_day = timezone.localdate(v2.published_at)
    if scenario.when == "before_v2":
        window = (v2_day - timedelta(days=90), v2_day - timedelta(days=25))
    else:
        window = (today - timedelta(days=80), today - timedelta(days=22))
    deals = Opportunity.objects.filter(
        stage=scenario.outcome,
        amount__gt=v2.retro_amount_threshold,
        closed_on__gte=window[0],
        closed_on__lte=window[1],
    ).exclude(pk__in=used)
    if scenario.owner_is_demo_rep:
        deals = deals.filter(owner=rep)
    preferences = []  # dropped from the end until a deal matches
    if scenario.loss_type == "competitor":
        preferences.append(Q(competitor__isnull=False))
        preferences.append(Q(competitor__name=scenario.competitor))
    elif scenario.loss_type == "no_decision":
        preferences.append(Q(loss_reason__code__in=["no-decision", "no-budget", "no-timing"]))
    preferences.append(Q(source_lead__isnull=False))
    for count in range(len(preferences), -1, -1):
        condition = Q()
        for preference in preferences[:count]:
            condition &= preference
        deal = (
            deals.filter(condition)
            .select_related("owner", "competitor")
            .order_by("-closed_on", "external_id")
            .first()
        )
        if deal is not None:
            return deal
    return None


def _target(action: Action, *, v1, v2, icp):
    kind = action.target_kind
    if kind == "sla":
        return v1 if action.target == "v1" else v2
    if kind == "icp":
        return icp
    if kind == "persona":
        return Persona.objects.get(version=icp, name=action.target)
    if kind == "campaign":
        return Campaign.objects.get(name=action.target)
    if kind == "asset":
        return ContentAsset.objects.get(title=action.target)
    return None


def winloss_load(*, stdout=None) -> None:
    """Seed a dozen win/loss retrospectives with drivers and action items."""
    if Retrospective.objects.exists():
        if stdout:
            stdout.write("  win/loss: retrospectives already there")
        return
    v1 = SlaVersion.objects.filter(number=1).first()
    v2 = SlaVersion.objects.filter(number=2).first()
    icp = IcpVersion.objects.filter(number=1).first()
    if not (v1 and v2 and icp and DriverCategory.objects.exists()):
        if stdout:
            stdout.write("  win/loss: skipped (load the agreement first)")
        return
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["marketing", "rep", "manager", "revops"])}  # fmt: skip
    categories = {c.code: c for c in DriverCategory.objects.all()}
    used, created, actions = set(), 0, 0
    with transaction.atomic():
        for scenario in SCENARIOS:
            deal = _deal(scenario, v2=v2, used=used, rep=users["rep"])
            if deal is None:
                continue
            used.add(deal.pk)
            participants = [users["marketing"], deal.owner or users["rep"]]
            if scenario.with_manager and users["manager"] not in participants:
                participants.append(users["manager"])
            competitor = (
                Competitor.objects.get(name=scenario.competitor) if scenario.competitor else None
            )
            if scenario.loss_type == "competitor" and deal.competitor_id:
                competitor = deal.competitor
            held_on = deal.closed_on + timedelta(days=scenario.held_after_days)
            campaign = deal.source_lead.source_campaign if deal.source_lead_id else None
            if campaign is None and scenario.campaign:
                campaign = Campaign.objects.get(name=scenario.campaign)
            retrospective = services.retrospective_create(
                opportunity=deal,
                actor=users["manager"],
                participants=participants,
                loss_type=scenario.loss_type,
                competitor=competitor,
                decided_at_stage=scenario.decided_at,
                campaign=campaign,
                pitch_match=scenario.pitch if campaign else "",
                pitch_difference=scenario.pitch_difference if campaign else "",
                key_quotes=scenario.quotes,
                learnings=scenario.learnings,
                held_on=held_on,
            )
            for code, sentiment, note in scenario.drivers:
                services.driver_save(
                    retrospective=retrospective, actor=users["manager"],
                    category=categories[code], sentiment=sentiment, note=note,
                )  # fmt: skip
            held_at = timezone.make_aware(datetime.combine(held_on, time(15)))
            for action in scenario.actions:
                item = services.action_item_create(
                    retrospective=retrospective,
                    actor=users["marketing"],
                    title=action.title,
                    description=action.description,
                    owner=users[action.owner],
                    due_on=held_on + timedelta(days=action.due_in_days)
                    if action.due_in_days > 0
                    else timezone.localdate() + timedelta(days=action.due_in_days),
                    target_kind=action.target_kind,
                    target=_target(action, v1=v1, v2=v2, icp=icp),
                    target_note=action.target if action.target_kind == "other" else "",
                    status="open" if action.closed_by_v2 else action.status,
                )
                if action.closed_by_v2:
                    services.action_item_close_by_version(action_item=item, version=v2)
                    ActionItem.objects.filter(pk=item.pk).update(closed_at=v2.published_at)
                elif not item.is_open:
                    ActionItem.objects.filter(pk=item.pk).update(
                        closed_at=held_at + timedelta(days=10)
                    )
                actions += 1
            Retrospective.objects.filter(pk=retrospective.pk).update(created_at=held_at)
            ActionItem.objects.filter(retrospective=retrospective).update(created_at=held_at)
            created += 1
    if stdout:
        closed = ActionItem.objects.filter(closed_by_sla_version=v2).count()
        stdout.write(
            f"  win/loss: {created} retrospectives, {actions} action items "
            f"({closed} closed by SLA {v2.label})"
        )
