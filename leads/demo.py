"""The demo's shared record: the public Maven CRM sample, imported through the
same importer users get, and a marketing side generated around it.

Deterministic: the same random seed and the same source files give the same
data. Dates are shifted by whole weeks so the newest deal closes just before
the day the demo is first loaded; the shift is the same for every record, so
counts, amounts and win rates equal those of the CSV files.

Loading is idempotent: people, products, accounts and deals upsert by natural
key; the generated marketing side is written once (skipped when present).
"""

import csv
import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from config import roles
from config.demo import DEMO_PASSWORD
from leads.models import (
    Account,
    Activity,
    Campaign,
    CampaignSpend,
    Channel,
    Competitor,
    ContentAsset,
    FeedbackReason,
    FunnelStage,
    Lead,
    LeadFeedback,
    LeadStage,
    LeadStageChange,
    Objection,
    Opportunity,
    OpportunityStage,
    OpportunityStageChange,
    Product,
    Segment,
    Team,
    TeamMembership,
    Touchpoint,
    TouchpointType,
)

MAVEN_DIR = Path(settings.SAMPLE_DATA_DIR)
MAVEN_LAST_DAY = date(2017, 12, 31)
SEED = 2026

# Maven's stages -> ours. "Engaging" deals are spread over demo, proposal and
# negotiation by a hash of their id (the sample does not say which).
ENGAGING_STAGES = (OpportunityStage.DEMO, OpportunityStage.PROPOSAL, OpportunityStage.NEGOTIATION)
MAVEN_STAGES = {"Prospecting": "discovery", "Won": "won", "Lost": "lost"}

COUNTRY_REGIONS = {
    "United States": "North America", "Panama": "Latin America", "Brazil": "Latin America",
    "Belgium": "EMEA", "Germany": "EMEA", "Italy": "EMEA", "Norway": "EMEA", "Poland": "EMEA",
    "Romania": "EMEA", "Jordan": "EMEA", "Kenya": "EMEA", "China": "APAC", "Japan": "APAC",
    "Korea": "APAC", "Philipines": "APAC",
}  # fmt: skip

COMPETITORS = ("Northwind Systems", "Contoso Devices", "Fabrikam Hardware", "Tailspin Computing")

CAMPAIGNS = (
    # name, channel, months active (offset from the window start, length), monthly spend
    ("Search: GTX workstations", Channel.PAID_SEARCH, 0, 15, 9000),
    ("Search: MG series brand", Channel.PAID_SEARCH, 3, 12, 4000),
    ("LinkedIn: IT leaders", Channel.PAID_SOCIAL, 1, 14, 7000),
    ("LinkedIn: procurement retargeting", Channel.PAID_SOCIAL, 6, 9, 3500),
    ("SEO: hardware buying guides", Channel.ORGANIC_SEARCH, 0, 15, 2500),
    ("Newsletter", Channel.EMAIL, 0, 15, 1200),
    ("Nurture: GTX upgrade path", Channel.EMAIL, 4, 11, 800),
    ("Webinar: total cost of ownership", Channel.WEBINAR, 2, 3, 6000),
    ("Webinar: hybrid work fleets", Channel.WEBINAR, 8, 3, 6000),
    ("Trade show: IT Expo", Channel.EVENTS, 5, 1, 45000),
    ("Roadshow: CIO breakfasts", Channel.EVENTS, 9, 4, 12000),
    ("Syndication: analyst report", Channel.CONTENT_SYNDICATION, 7, 6, 8000),
    ("Partner: reseller MDF", Channel.PARTNER, 0, 15, 3000),
    ("Customer referrals", Channel.REFERRAL, 0, 15, 1000),
)

ASSETS = (
    # title, kind, funnel stage
    ("Buyer's guide to workstation fleets", ContentAsset.Kind.EBOOK, FunnelStage.TOP),
    ("Blog: 7 signs your laptops cost too much", ContentAsset.Kind.BLOG_POST, FunnelStage.TOP),
    ("Blog: GTX vs MG, which series fits", ContentAsset.Kind.BLOG_POST, FunnelStage.TOP),
    ("Analyst report: hardware TCO 2017", ContentAsset.Kind.WHITEPAPER, FunnelStage.TOP),
    ("Whitepaper: securing endpoint fleets", ContentAsset.Kind.WHITEPAPER, FunnelStage.MIDDLE),
    ("Webinar recording: total cost of ownership", ContentAsset.Kind.WEBINAR, FunnelStage.MIDDLE),
    ("Webinar recording: hybrid work fleets", ContentAsset.Kind.WEBINAR, FunnelStage.MIDDLE),
    ("GTX Pro datasheet", ContentAsset.Kind.DATASHEET, FunnelStage.MIDDLE),
    ("MG Advanced datasheet", ContentAsset.Kind.DATASHEET, FunnelStage.MIDDLE),
    ("Case study: Codehow cut refresh costs 30%", ContentAsset.Kind.CASE_STUDY, FunnelStage.BOTTOM),
    ("Case study: Rangreen's 2,000-seat rollout", ContentAsset.Kind.CASE_STUDY, FunnelStage.BOTTOM),
    ("Product demo video", ContentAsset.Kind.DEMO_VIDEO, FunnelStage.BOTTOM),
    ("Pricing", ContentAsset.Kind.PRICING_PAGE, FunnelStage.BOTTOM),
    ("ROI calculator", ContentAsset.Kind.ROI_CALCULATOR, FunnelStage.BOTTOM),
)

FIRST_NAMES = (
    "Alex", "Ana", "Ben", "Carla", "Chen", "Dana", "David", "Elena", "Emma", "Farah", "Felix",
    "Grace", "Hana", "Ivan", "Jada", "James", "Jonas", "Julia", "Kai", "Kenji", "Laura", "Leo",
    "Lina", "Luca", "Maria", "Mateo", "Maya", "Mei", "Nadia", "Noah", "Omar", "Olivia", "Pablo",
    "Priya", "Quinn", "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Tom", "Uma", "Victor",
    "Wen", "Yara", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Alvarez", "Baker", "Berg", "Brown", "Chen", "Costa", "Dubois", "Evans", "Fischer",
    "Garcia", "Gupta", "Hansen", "Hoffmann", "Ito", "Jensen", "Kim", "Kowalski", "Larsen", "Lee",
    "Lopez", "Martin", "Meyer", "Moreau", "Nakamura", "Novak", "Okafor", "Olsen", "Park", "Patel",
    "Perez", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Tanaka", "Torres", "Wagner",
    "Wang", "Weber", "Wilson", "Young", "Zhang",
)  # fmt: skip
TITLES = (
    ("Chief Information Officer", 3), ("IT Director", 6), ("VP of IT", 3),
    ("Head of Procurement", 4), ("Procurement Manager", 5), ("IT Manager", 8),
    ("Systems Administrator", 6), ("Operations Manager", 4), ("CFO", 1),
    ("Workplace Technology Lead", 3), ("Help Desk Technician", 3), ("Student", 1),
)  # fmt: skip
OTHER_COMPANIES = (
    "Brightline Logistics", "Cobalt Health", "Driftwood Media", "Evergreen Foods", "Foxglove Legal",
    "Granite Insurance", "Harbor Freight Partners", "Ironclad Security", "Juniper Schools",
    "Kestrel Aviation", "Lumen Energy", "Maple Dental", "Nimbus Analytics", "Orchard Retail",
    "Pinnacle Builders", "Quarry Minerals", "Redwood Realty", "Summit Clinics", "Tidewater Ports",
    "Upland Farms",
)  # fmt: skip
PUBLIC_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")

MARKETING_CHANNEL_WEIGHTS = (
    (Channel.PAID_SEARCH, 22), (Channel.ORGANIC_SEARCH, 18), (Channel.PAID_SOCIAL, 14),
    (Channel.EMAIL, 8), (Channel.WEBINAR, 10), (Channel.EVENTS, 9),
    (Channel.CONTENT_SYNDICATION, 7), (Channel.REFERRAL, 6), (Channel.PARTNER, 6),
)  # fmt: skip

# Touchpoint types by the stage of the journey they belong to.
EARLY_TYPES = (
    (TouchpointType.PAGE_VIEW, 10), (TouchpointType.AD_CLICK, 3), (TouchpointType.EMAIL_OPEN, 4),
    (TouchpointType.CONTENT_DOWNLOAD, 3),
)  # fmt: skip
MIDDLE_TYPES = (
    (TouchpointType.PAGE_VIEW, 8), (TouchpointType.EMAIL_CLICK, 4),
    (TouchpointType.CONTENT_DOWNLOAD, 4), (TouchpointType.WEBINAR_REGISTERED, 2),
    (TouchpointType.WEBINAR_ATTENDED, 2), (TouchpointType.EVENT_ATTENDED, 1),
    (TouchpointType.FORM_SUBMIT, 1),
)  # fmt: skip
LATE_TYPES = (
    (TouchpointType.PAGE_VIEW, 6), (TouchpointType.CONTENT_DOWNLOAD, 3), (TouchpointType.CHAT, 1),
    (TouchpointType.DEMO_REQUEST, 2), (TouchpointType.CONTACT_REQUEST, 1),
    (TouchpointType.EMAIL_CLICK, 2),
)  # fmt: skip


def weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def shift_days(today: date) -> int:
    """Whole weeks that move the sample's last day to just before `today`
    (weekdays stay weekdays)."""
    return ((today - timedelta(days=1) - MAVEN_LAST_DAY).days // 7) * 7


def slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def account_domain(name: str) -> str:
    """Demo companies get a reserved .example domain (never a real company's)."""
    return f"{slug(name)}.example"


def read_csv(name: str) -> list[dict]:
    with open(MAVEN_DIR / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Window:
    start: datetime
    end: datetime
    shift: timedelta

    def shifted(self, value: str) -> date | None:
        return date.fromisoformat(value) + self.shift if value else None


def demo_window(today: date) -> Window:
    shift = timedelta(days=shift_days(today))
    tz = timezone.get_current_timezone()
    start = datetime.combine(date(2016, 10, 1) + shift, time(9), tz)
    return Window(start=start, end=timezone.now(), shift=shift)


# --- People, teams and products -----------------------------------------------------


def sales_people_load() -> dict[str, object]:
    """Managers and agents from sales_teams.csv as users in teams. The demo
    users `manager` and `rep` are Dustin Brinkmann and Anna Snelling, so
    logging in as them shows real pipelines. Returns users by full name."""
    User = get_user_model()
    rep_group = Group.objects.get(name=roles.SALES_REP)
    manager_group = Group.objects.get(name=roles.SALES_MANAGER)
    by_name = {
        user.get_full_name(): user
        for user in User.objects.filter(groups__in=[rep_group, manager_group]).distinct()
    }

    def person(full_name: str, group) -> object:
        if full_name in by_name:
            return by_name[full_name]
        first, _, last = full_name.partition(" ")
        username = f"{first}.{last}".lower().replace(" ", "")
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@accord.example",
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(group)
        by_name[full_name] = user
        return user

    for row in read_csv("sales_teams.csv"):
        manager = person(row["manager"], manager_group)
        team, _ = Team.objects.get_or_create(
            name=f"{row['regional_office']}: {row['manager']}",
            defaults={"region": row["regional_office"], "manager": manager},
        )
        agent = person(row["sales_agent"], rep_group)
        TeamMembership.objects.get_or_create(user=agent, defaults={"team": team})
    return by_name


def products_load() -> None:
    for row in read_csv("products.csv"):
        Product.objects.update_or_create(
            name=row["product"],
            defaults={"series": row["series"], "list_price": Decimal(row["sales_price"])},
        )


# --- The marketing side ---------------------------------------------------------------


class MarketingGenerator:
    """Campaigns, content, leads, touchpoints, activities and feedback whose
    timing agrees with the imported deals."""

    def __init__(self, *, window: Window, people: dict, rng: random.Random):
        self.window = window
        self.rng = rng
        self.people = people
        self.reps = [u for u in people.values() if u.groups.filter(name=roles.SALES_REP).exists()]
        self.people_by_id = {u.pk: u for u in people.values()}
        self.emails: set[str] = set(Lead.objects.values_list("email", flat=True))
        self.leads: list[Lead] = []
        self.touchpoints: list[Touchpoint] = []
        self.activities: list[Activity] = []
        self.changes: list[tuple[int, LeadStageChange]] = []
        self.feedback: list[tuple[int, LeadFeedback, list]] = []

    def campaigns_load(self):
        first_month = self.window.start.date().replace(day=1)
        campaigns = []
        for name, channel, offset, length, spend in CAMPAIGNS:
            starts = _add_months(first_month, offset)
            # Always-on programmes (the whole window) have no end date.
            always_on = length >= 15
            ends = None if always_on else _add_months(starts, length) - timedelta(days=1)
            length = 36 if always_on else length
            campaign, _ = Campaign.objects.get_or_create(
                name=name,
                defaults={
                    "channel": channel,
                    "starts_on": starts,
                    "ends_on": ends,
                    "budget": Decimal(spend * (12 if always_on else length)),
                    "description": f"{Channel(channel).label} campaign.",
                },
            )
            for month_index in range(length):
                month = _add_months(starts, month_index)
                if month > timezone.localdate():
                    break
                amount = Decimal(round(spend * self.rng.uniform(0.8, 1.2)))
                CampaignSpend.objects.get_or_create(
                    campaign=campaign, month=month, defaults={"amount": amount}
                )
            campaigns.append(campaign)
        self.campaigns_by_channel = defaultdict(list)
        for campaign in campaigns:
            self.campaigns_by_channel[campaign.channel].append(campaign)
        self.assets = {}
        asset_campaign = {
            FunnelStage.TOP: "SEO: hardware buying guides",
            FunnelStage.MIDDLE: "Nurture: GTX upgrade path",
        }
        for title, kind, stage in ASSETS:
            asset, _ = ContentAsset.objects.get_or_create(
                title=title,
                defaults={
                    "kind": kind,
                    "funnel_stage": stage,
                    "url": f"/resources/{slug(title)}",
                    "campaign": Campaign.objects.filter(name=asset_campaign.get(stage, "")).first(),
                },
            )
            self.assets.setdefault(stage, []).append(asset)
        for name in COMPETITORS:
            Competitor.objects.get_or_create(name=name)
        self.competitors = list(Competitor.objects.all())
        self.objections = list(Objection.objects.filter(is_active=True))
        self.reject_reasons = list(FeedbackReason.objects.filter(applies_to__contains=["reject"]))
        self.disqualify_reasons = list(
            FeedbackReason.objects.filter(applies_to__contains=["disqualify"])
        )

    # Helpers -------------------------------------------------------------------------

    def person_email(self, first: str, last: str, domain: str) -> str:
        base = f"{first}.{last}".lower()
        email, n = f"{base}@{domain}", 1
        while email in self.emails:
            n += 1
            email = f"{base}{n}@{domain}"
        self.emails.add(email)
        return email

    def campaign_for(self, channel: str, when: datetime):
        options = [
            c
            for c in self.campaigns_by_channel.get(channel, [])
            if (c.starts_on is None or c.starts_on <= when.date())
            and (c.ends_on is None or when.date() <= c.ends_on)
        ]
        return self.rng.choice(options) if options else None

    def at(self, start: datetime, end: datetime) -> datetime:
        """A moment between two others, in working hours."""
        if end <= start:
            return start
        moment = start + (end - start) * self.rng.random()
        return moment.replace(hour=self.rng.randint(8, 18), minute=self.rng.randint(0, 59))

    def new_lead(self, *, company: str, domain: str, account, created_at, channel, **fields):
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        mail_domain = domain if domain else self.rng.choice(PUBLIC_MAIL)
        lead = Lead(
            first_name=first,
            last_name=last,
            email=self.person_email(first, last, mail_domain),
            title=weighted(self.rng, TITLES),
            company=company,
            company_domain=domain,
            account=account,
            country=account.country if account else self.rng.choice(("United States", "Germany")),
            region=account.region if account else "",
            industry=account.industry if account else "",
            employees=account.employees if account else self.rng.choice((40, 120, 350, 900)),
            source_channel=channel,
            source_campaign=self.campaign_for(channel, created_at),
            created_at=created_at,
            stage_changed_at=created_at,
            **fields,
        )
        lead.segment = Segment.for_employees(lead.employees)
        self.leads.append(lead)
        return lead

    def journey(self, lead: Lead, start: datetime, end: datetime, count: int, *, hand_raise: bool):
        """`count` touchpoints from start to end, moving from early to late
        interest; the first one is in the lead's source channel."""
        moments = sorted(self.at(start, end) for _ in range(count))
        moments[0] = start
        for index, moment in enumerate(moments):
            progress = index / max(1, count - 1)
            kinds = (
                EARLY_TYPES if progress < 0.35 else MIDDLE_TYPES if progress < 0.8 else LATE_TYPES
            )
            kind = weighted(self.rng, kinds)
            if index == 0:
                channel = lead.source_channel
                kind = {
                    Channel.WEBINAR: TouchpointType.WEBINAR_REGISTERED,
                    Channel.EVENTS: TouchpointType.EVENT_ATTENDED,
                    Channel.CONTENT_SYNDICATION: TouchpointType.CONTENT_DOWNLOAD,
                    Channel.PAID_SEARCH: TouchpointType.AD_CLICK,
                    Channel.PAID_SOCIAL: TouchpointType.AD_CLICK,
                }.get(channel, TouchpointType.PAGE_VIEW)
            else:
                channel = weighted(self.rng, (*MARKETING_CHANNEL_WEIGHTS, (Channel.DIRECT, 25)))
            if not hand_raise and kind in TouchpointType.hand_raises():
                kind = TouchpointType.PAGE_VIEW
            stage = (
                FunnelStage.TOP
                if progress < 0.35
                else FunnelStage.MIDDLE
                if progress < 0.8
                else FunnelStage.BOTTOM
            )
            asset = None
            if kind in (TouchpointType.CONTENT_DOWNLOAD, TouchpointType.PAGE_VIEW) and (
                self.rng.random() < 0.6
            ):
                asset = self.rng.choice(self.assets[stage])
            self.touchpoints.append(
                Touchpoint(
                    lead=lead,
                    type=kind,
                    occurred_at=moment,
                    channel=channel,
                    campaign=(lead.source_campaign if index == 0 else None)
                    or self.campaign_for(channel, moment),
                    asset=asset,
                    url=asset.url if asset else "/",
                    source=Touchpoint.Source.DEMO,
                )
            )
        if hand_raise:
            self.touchpoints.append(
                Touchpoint(
                    lead=lead,
                    type=self.rng.choice(
                        (TouchpointType.DEMO_REQUEST, TouchpointType.CONTACT_REQUEST)
                    ),
                    occurred_at=end,
                    channel=Channel.DIRECT,
                    url="/contact",
                    source=Touchpoint.Source.DEMO,
                )
            )

    def change(self, lead, from_stage, to_stage, when, actor=None, reason=None, note=""):
        self.changes.append(
            (
                lead,
                LeadStageChange(
                    from_stage=from_stage,
                    to_stage=to_stage,
                    actor=actor,
                    reason=reason,
                    note=note,
                    changed_at=when,
                ),
            )
        )

    def contact(self, lead, owner, when, kind=Activity.Kind.CALL, subject="Intro call"):
        self.activities.append(
            Activity(
                lead=lead,
                account=lead.account,
                actor=owner,
                kind=kind,
                subject=subject,
                occurred_at=when,
            )
        )

    # The two populations ------------------------------------------------------------

    def deal_leads(self, opportunities: list[Opportunity]):
        """A source lead for about a third of the deals with an account: created
        before the deal, its journey timed to end when the deal opened."""
        for opportunity in opportunities:
            if opportunity.account_id is None or self.rng.random() > 0.33:
                continue
            opened = opportunity.created_at
            created = opened - timedelta(days=self.rng.randint(14, 75))
            created = max(created, self.window.start)
            marketing = self.rng.random() < 0.68
            channel = (
                weighted(self.rng, MARKETING_CHANNEL_WEIGHTS) if marketing else Channel.OUTBOUND
            )
            account = opportunity.account
            won = opportunity.stage == OpportunityStage.WON
            lead = self.new_lead(
                company=account.name,
                domain=account.domain,
                account=account,
                created_at=created,
                channel=channel,
                owner_id=opportunity.owner_id,
                stage=LeadStage.CUSTOMER if won else LeadStage.OPPORTUNITY,
            )
            mql_at = created + (opened - created) * self.rng.uniform(0.4, 0.7)
            accepted = mql_at + timedelta(hours=self.rng.randint(1, 30))
            qualified = accepted + (opened - accepted) * self.rng.uniform(0.3, 0.8)
            touches = self.rng.randint(10, 55) if marketing else self.rng.randint(2, 12)
            self.journey(
                lead, created, mql_at, touches, hand_raise=marketing and self.rng.random() < 0.5
            )
            owner = self.people_by_id.get(opportunity.owner_id)
            self.change(lead, "", LeadStage.NEW, created, note="Lead captured.")
            if marketing:
                self.change(
                    lead, LeadStage.NEW, LeadStage.MQL, mql_at, note="Met the SLA threshold."
                )
                self.change(lead, LeadStage.MQL, LeadStage.SAL, accepted, actor=owner)
                self.feedback.append(
                    (lead, LeadFeedback(author=owner, verdict="accepted", created_at=accepted), [])
                )
                lead.mql_at = mql_at
                lead.response_due_at = mql_at + timedelta(hours=24)
            else:
                self.change(lead, LeadStage.NEW, LeadStage.SAL, accepted, actor=owner,
                            note="Sales-sourced (outbound).")  # fmt: skip
            contact_at = accepted + timedelta(hours=self.rng.choice((1, 2, 3, 5, 8, 20, 30)))
            lead.first_contact_at = contact_at
            self.contact(lead, owner, contact_at)
            self.contact(
                lead,
                owner,
                self.at(contact_at, qualified),
                Activity.Kind.MEETING,
                "Discovery meeting",
            )
            self.change(lead, LeadStage.SAL, LeadStage.SQL, qualified, actor=owner)
            self.change(lead, LeadStage.SQL, LeadStage.OPPORTUNITY, opened, actor=owner,
                        note=f"Converted: {opportunity.name}.")  # fmt: skip
            if won:
                closed = datetime.combine(opportunity.closed_on, time(17), opened.tzinfo)
                self.change(lead, LeadStage.OPPORTUNITY, LeadStage.CUSTOMER, closed, actor=owner)
                lead.stage_changed_at = closed
            else:
                lead.stage_changed_at = opened
            lead.version = 1 + sum(1 for entry in self.changes if entry[0] is lead)
            opportunity.source_lead = lead
            opportunity.source_channel = channel
            opportunity.is_marketing_sourced = marketing

    def open_leads(self, accounts: list[Account], count: int, demo_rep):
        """Leads that did not (yet) become deals: nurtured, waiting for a rep,
        being worked, rejected with feedback, or disqualified."""
        now = self.window.end
        reps = self.reps
        for index in range(count):
            at_account = self.rng.random() < 0.45
            if at_account:
                account = self.rng.choice(accounts)
                company, domain = account.name, account.domain
            else:
                account = None
                company = self.rng.choice(OTHER_COMPANIES)
                domain = "" if self.rng.random() < 0.25 else account_domain(company)
            created = self.at(self.window.start, now - timedelta(hours=2))
            roll = self.rng.random()
            recent = now - created < timedelta(days=21)
            if recent and roll < 0.45:
                stage = LeadStage.MQL
            elif roll < 0.45:
                stage = LeadStage.NEW
            elif roll < 0.55:
                stage = LeadStage.SAL
            elif roll < 0.6:
                stage = LeadStage.SQL
            elif roll < 0.85:
                stage = LeadStage.RECYCLED
            else:
                stage = LeadStage.DISQUALIFIED
            channel = weighted(self.rng, MARKETING_CHANNEL_WEIGHTS)
            lead = self.new_lead(
                company=company, domain=domain, account=account, created_at=created,
                channel=channel, stage=stage,
            )  # fmt: skip
            span_end = min(
                now - timedelta(minutes=30), created + timedelta(days=self.rng.randint(3, 60))
            )
            touches = self.rng.randint(3, 36)
            self.journey(
                lead,
                created,
                span_end,
                touches,
                hand_raise=stage == LeadStage.MQL and self.rng.random() < 0.4,
            )
            self.change(lead, "", LeadStage.NEW, created, note="Lead captured.")
            lead.stage_changed_at = created
            if stage == LeadStage.NEW:
                continue
            if stage == LeadStage.DISQUALIFIED and self.rng.random() < 0.5:
                # Marketing weeds out bad data before it reaches sales.
                reason = self.rng.choice(self.disqualify_reasons)
                self.change(lead, LeadStage.NEW, stage, span_end, reason=reason)
                self.feedback.append(
                    (
                        lead,
                        LeadFeedback(verdict="disqualified", reason=reason, created_at=span_end),
                        [],
                    )
                )
                lead.stage_changed_at = span_end
                continue
            mql_at = span_end
            owner = (
                demo_rep if (stage == LeadStage.MQL and index % 3 == 0) else self.rng.choice(reps)
            )
            lead.owner = owner
            lead.mql_at = mql_at
            hours = 1 if lead.is_high_intent else 24
            lead.response_due_at = mql_at + timedelta(hours=hours)
            self.change(lead, LeadStage.NEW, LeadStage.MQL, mql_at, note="Met the SLA threshold.")
            lead.stage_changed_at = mql_at
            if stage == LeadStage.MQL:
                continue
            decided = min(
                now - timedelta(minutes=5), mql_at + timedelta(hours=self.rng.randint(1, 40))
            )
            if self.rng.random() < 0.8:
                lead.first_contact_at = decided
                self.contact(lead, owner, decided)
            if stage in (LeadStage.SAL, LeadStage.SQL):
                self.change(lead, LeadStage.MQL, LeadStage.SAL, decided, actor=owner)
                self.feedback.append(
                    (lead, LeadFeedback(author=owner, verdict="accepted", created_at=decided), [])
                )
                lead.stage_changed_at = decided
                if stage == LeadStage.SQL:
                    later = min(now, decided + timedelta(days=self.rng.randint(1, 10)))
                    self.change(lead, LeadStage.SAL, LeadStage.SQL, later, actor=owner)
                    lead.stage_changed_at = later
                continue
            reason_pool = (
                self.reject_reasons if stage == LeadStage.RECYCLED else self.disqualify_reasons
            )
            reason = self.rng.choice(reason_pool)
            note = self.rng.choice((
                "", "Spoke briefly; not a fit right now.", "No budget until next fiscal year.",
                "Using a competitor under a 3-year contract.", "Student researching a thesis.",
                "Email bounced; phone disconnected.", "Asked to be contacted next quarter.",
            ))  # fmt: skip
            objections = self.rng.sample(self.objections, k=self.rng.choice((0, 0, 1, 2)))
            competitor = self.rng.choice(self.competitors) if self.rng.random() < 0.25 else None
            if stage == LeadStage.RECYCLED:
                self.change(
                    lead,
                    LeadStage.MQL,
                    LeadStage.REJECTED,
                    decided,
                    actor=owner,
                    reason=reason,
                    note=note,
                )
                self.change(
                    lead,
                    LeadStage.REJECTED,
                    LeadStage.RECYCLED,
                    decided,
                    actor=owner,
                    note="Returned to marketing for nurture.",
                )
                lead.owner = None
                verdict = "rejected"
            else:
                self.change(
                    lead, LeadStage.MQL, stage, decided, actor=owner, reason=reason, note=note
                )
                verdict = "disqualified"
            self.feedback.append(
                (
                    lead,
                    LeadFeedback(
                        author=owner,
                        verdict=verdict,
                        reason=reason,
                        note=note,
                        competitor=competitor,
                        created_at=decided,
                    ),
                    objections,
                )
            )
            lead.stage_changed_at = decided

    def high_intent_flags(self):
        raisers = {
            id(t.lead): t.lead for t in self.touchpoints if t.type in TouchpointType.hand_raises()
        }
        for lead in raisers.values():
            lead.is_high_intent = True
            if lead.stage == LeadStage.MQL and lead.mql_at:
                lead.response_due_at = lead.mql_at + timedelta(hours=1)

    def save(self):
        """Write everything with bulk inserts (ids come back from PostgreSQL)."""
        self.high_intent_flags()
        Lead.objects.bulk_create(self.leads, batch_size=2000)
        for touch in self.touchpoints:
            touch.lead_id = touch.lead.pk
        Touchpoint.objects.bulk_create(self.touchpoints, batch_size=5000)
        for activity in self.activities:
            activity.lead_id = activity.lead.pk
        Activity.objects.bulk_create(self.activities, batch_size=5000)
        rows = []
        for lead, change in self.changes:
            change.lead_id = lead.pk
            rows.append(change)
        LeadStageChange.objects.bulk_create(rows, batch_size=5000)
        feedback_rows = []
        for lead, item, _ in self.feedback:
            item.lead_id = lead.pk
            item.campaign_id = lead.source_campaign_id
            item.channel = lead.source_channel
            feedback_rows.append(item)
        LeadFeedback.objects.bulk_create(feedback_rows, batch_size=5000)
        through = LeadFeedback.objections.through
        through.objects.bulk_create(
            [
                through(leadfeedback_id=item.pk, objection_id=objection.pk)
                for (_, item, objections) in self.feedback
                for objection in objections
            ],
            batch_size=5000,
        )


def deal_histories(opportunities: list[Opportunity], window: Window, rng: random.Random) -> None:
    """Replace each imported deal's single "Imported" history row with the path
    it plausibly took (discovery, demo, proposal, negotiation, then won or
    lost), dated between its creation and its close."""
    order = list(OpportunityStage.open_stages())
    rows = []
    for opportunity in opportunities:
        final = opportunity.stage
        if final in OpportunityStage.closed_stages():
            steps = [*order[: rng.randint(1, len(order))], final]
            end = datetime.combine(opportunity.closed_on, time(16), window.start.tzinfo)
        else:
            steps = order[: order.index(final) + 1]
            end = min(window.end, opportunity.created_at + timedelta(days=rng.randint(5, 40)))
        start = opportunity.created_at
        moments = sorted(start + (end - start) * rng.random() for _ in steps[1:])
        previous = ""
        for stage, moment in zip(steps, [start, *moments], strict=True):
            rows.append(
                OpportunityStageChange(
                    opportunity_id=opportunity.pk,
                    from_stage=previous,
                    to_stage=stage,
                    actor_id=opportunity.owner_id,
                    changed_at=moment,
                )
            )
            previous = stage
        opportunity.stage_changed_at = rows[-1].changed_at
    OpportunityStageChange.objects.filter(opportunity__in=opportunities).delete()
    OpportunityStageChange.objects.bulk_create(rows, batch_size=5000)


def loss_details(opportunities: list[Opportunity], rng: random.Random) -> None:
    """The sample does not say why deals were lost; give lost deals a loss
    reason (and sometimes a competitor) so the loss views have material."""
    reasons = list(FeedbackReason.objects.filter(applies_to__contains=["loss"]))
    competitors = list(Competitor.objects.all())
    for opportunity in opportunities:
        if opportunity.stage != OpportunityStage.LOST:
            continue
        opportunity.loss_reason = rng.choice(reasons)
        if opportunity.loss_reason.code == "lost-to-competitor" or rng.random() < 0.2:
            opportunity.competitor = rng.choice(competitors)


def maven_import(window: Window, stdout=None) -> None:
    """Accounts and deals from the sample, through the CSV importer."""
    from leads.importing import ImportOptions, rows_import

    accounts = []
    for row in read_csv("accounts.csv"):
        accounts.append(
            {**row, "domain": account_domain(row["account"]),
             "region": COUNTRY_REGIONS.get(row["office_location"], "")}
        )  # fmt: skip
    result = rows_import(
        kind="accounts",
        rows=accounts,
        mapping={
            "name": "account",
            "domain": "domain",
            "industry": "sector",
            "year_established": "year_established",
            "annual_revenue": "revenue",
            "employees": "employees",
            "country": "office_location",
            "region": "region",
            "parent": "subsidiary_of",
        },
        options=ImportOptions(industry_aliases={"technolgy": "technology"}),
    )
    _report(stdout, "accounts.csv", result)

    prices = {_compact_name(p.name): p.list_price for p in Product.objects.all()}
    deals = []
    for row in read_csv("sales_pipeline.csv"):
        deal_id = row["opportunity_id"]
        stage = row["deal_stage"]
        ours = MAVEN_STAGES.get(stage)
        if stage == "Engaging":
            ours = ENGAGING_STAGES[int(stable_fraction(deal_id) * len(ENGAGING_STAGES))]
        engaged = window.shifted(row["engage_date"])
        if engaged is None:  # prospects have not engaged yet: opened in the last weeks
            engaged = (
                MAVEN_LAST_DAY
                + window.shift
                - timedelta(days=1 + int(stable_fraction(deal_id) * 45))
            )
        amount = (
            row["close_value"] if stage == "Won" else prices.get(_compact_name(row["product"]), "")
        )
        expected = ""
        if stage in ("Prospecting", "Engaging"):
            # The sample has no forecast: open deals expect to close one to four
            # months after they opened, and never before next week.
            forecast = engaged + timedelta(days=30 + int(stable_fraction(deal_id + "c") * 90))
            soonest = MAVEN_LAST_DAY + window.shift + timedelta(days=7)
            expected = max(forecast, soonest).isoformat()
        deals.append(
            {
                "id": deal_id, "agent": row["sales_agent"], "product": row["product"],
                "account": row["account"], "stage": ours or stage, "amount": str(amount),
                "created": engaged.isoformat(), "expected": expected,
                "closed": (window.shifted(row["close_date"]) or "") and window.shifted(row["close_date"]).isoformat(),
            }
        )  # fmt: skip
    result = rows_import(
        kind="opportunities",
        rows=deals,
        mapping={
            "external_id": "id",
            "owner": "agent",
            "product": "product",
            "account": "account",
            "stage": "stage",
            "amount": "amount",
            "created_at": "created",
            "closed_on": "closed",
            "expected_close_on": "expected",
        },
        options=ImportOptions(create_missing_accounts=False),
    )
    _report(stdout, "sales_pipeline.csv", result)


def _compact_name(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _report(stdout, name, result) -> None:
    if stdout is None:
        return
    stdout.write(
        f"  {name}: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.error_count} rejected"
    )
    for error in result.errors[:10]:
        stdout.write(f"    row {error.row_number}: {error.errors}")


def demo_load(*, stdout=None) -> None:
    """Load the Maven CRM sample and generate the marketing side around it."""
    window = demo_window(timezone.localdate())
    people = sales_people_load()
    products_load()
    maven_import(window, stdout)
    if Touchpoint.objects.filter(source=Touchpoint.Source.DEMO).exists():
        if stdout:
            stdout.write("  marketing side: already generated")
        return
    rng = random.Random(SEED)
    with transaction.atomic():
        generator = MarketingGenerator(window=window, people=people, rng=rng)
        generator.campaigns_load()
        opportunities = list(
            Opportunity.objects.filter(external_id__gt="")
            .select_related("account")
            .order_by("external_id")
        )
        deal_histories(opportunities, window, rng)
        loss_details(opportunities, rng)
        generator.deal_leads(opportunities)
        accounts = list(Account.objects.all())
        demo_rep = get_user_model().objects.get(username="rep")
        generator.open_leads(accounts, 2000, demo_rep)
        generator.save()
        for opportunity in opportunities:
            if opportunity.source_lead is not None:
                opportunity.source_lead_id = opportunity.source_lead.pk
        Opportunity.objects.bulk_update(
            opportunities,
            ["source_lead", "source_channel", "is_marketing_sourced", "stage_changed_at",
             "loss_reason", "competitor"],
            batch_size=2000,
        )  # fmt: skip
    if stdout:
        stdout.write(
            f"  marketing side: {len(generator.leads)} leads, {len(generator.touchpoints)} "
            f"touchpoints, {len(generator.activities)} activities, "
            f"{Campaign.objects.count()} campaigns"
        )


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def stable_fraction(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
