#!/usr/bin/env python
"""Generate a reproducible benchmark data set with PostgreSQL's COPY.

    .venv/bin/python scripts/bench_data.py [--scale 1.0] [--database accord_bench] [--fresh]
        [--opportunities N] [--open-deal-share S]

At scale 1: 20,000 accounts, 200,000 leads with their stage history,
2,000,000 touchpoints, 30,000 opportunities (30% open; --opportunities and
--open-deal-share change that, e.g. 40000 and 0.75 for 30,000 open deals)
and 1,000 win/loss retrospectives (with participants, drivers and a few
action items), with the demo's people, products, campaigns and content and
the demo's agreement history: ICP v1, SLA v1 superseded by v2 120 days ago
(leads that reached MQL are stamped with the version in force then), the
routing rules, and an SLA v3 draft (a lower MQL threshold) for the impact
preview. Other scales multiply every count (--scale 0.1, --scale 5).

The same arguments and seed give the same rows (dates are relative to the
day it runs). The database (default accord_bench on the server of
$BENCH_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432) is created
and migrated first; --fresh drops it before. The time taken and the row
counts are kept in the table bench_meta of that database (scripts/bench.py
reports them). Never point it at a database you care about.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SEED = 8
# Bump when the data set's shape changes: scripts/bench.py regenerates older ones.
GENERATOR_VERSION = 2

# A lead's final stage -> the stages it went through after `new`.
STAGE_PATHS = {
    "new": (),
    "mql": ("mql",),
    "sal": ("mql", "sal"),
    "sql": ("mql", "sal", "sql"),
    "opportunity": ("mql", "sal", "sql", "opportunity"),
    "customer": ("mql", "sal", "sql", "opportunity", "customer"),
    "recycled": ("mql", "rejected", "recycled"),
    "disqualified": ("mql", "disqualified"),
}
LEAD_STAGES = (("new", 40), ("mql", 8), ("sal", 8), ("sql", 5), ("opportunity", 6),
               ("customer", 5), ("recycled", 18), ("disqualified", 10))  # fmt: skip
DEAL_STAGES = (("discovery", 10), ("demo", 8), ("proposal", 7), ("negotiation", 5),
               ("won", 40), ("lost", 30))  # fmt: skip
TOUCH_TYPES = ("page_view", "page_view", "page_view", "email_open", "email_click",
               "content_download", "webinar_attended", "ad_click", "form_submit", "demo_request")  # fmt: skip
INDUSTRIES = ("software", "retail", "medical", "finance", "technology", "services",
              "telecommunications", "marketing", "employment", "entertainment")  # fmt: skip
COUNTRIES = ("United States", "Germany", "Japan", "Brazil", "Kenya", "Norway")


def database_url(name: str) -> str:
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def database_prepare(name: str, fresh: bool) -> str:
    admin_url = database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    return url


def bench_meta(url: str) -> dict | None:
    """What the generator recorded in a benchmark database (None if nothing)."""
    try:
        with psycopg.connect(url) as conn:
            exists = conn.execute("SELECT to_regclass('bench_meta')").fetchone()[0]
            if exists is None:
                return None
            row = conn.execute("SELECT value FROM bench_meta WHERE key = 'data'").fetchone()
            return row[0] if row else None
    except psycopg.OperationalError:
        return None


def bench_meta_save(url: str, value: dict) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb)")
        conn.execute(
            "INSERT INTO bench_meta VALUES ('data', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [json.dumps(value)],
        )


def copy_rows(conn, table: str, columns: list[str], rows) -> int:
    """COPY rows (tuples) into table; returns the count."""
    count = 0
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def next_id(conn, table: str) -> int:
    return conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0]


def sequence_sync(conn, table: str) -> None:
    conn.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database", default="accord_bench")
    parser.add_argument("--fresh", action="store_true", help="Drop the database first.")
    parser.add_argument("--opportunities", type=int, help="Deals (default 30,000 × scale).")
    parser.add_argument(
        "--open-deal-share", type=float, help="Share of deals in open stages (default 0.3)."
    )
    args = parser.parse_args()
    started = time.monotonic()
    url = database_prepare(args.database, args.fresh)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    rows = generate(
        url, args.scale, opportunities=args.opportunities, open_share=args.open_deal_share
    )
    if rows is None:
        return
    seconds = round(time.monotonic() - started, 1)
    bench_meta_save(url, {
        "generator_version": GENERATOR_VERSION, "scale": args.scale, "seed": SEED,
        "seconds": seconds, "rows": rows, "generated_at": datetime.now(UTC).isoformat(),
    })  # fmt: skip
    print(f"Benchmark data at scale {args.scale} in {seconds:.0f} s ({url}).")


class Timeline:
    """Moments after a lead's creation, never later than `now`: each step
    takes a random gap, shortened for recent leads so the history fits."""

    def __init__(self, rng: random.Random, now: datetime):
        self.rng, self.now = rng, now

    def after(self, moment: datetime, low: timedelta, high: timedelta) -> datetime:
        gap = low + self.rng.random() * (high - low)
        room = self.now - moment
        return moment + min(gap, room * 0.3)


def generate(
    url: str, scale: float, *, opportunities: int | None = None, open_share: float | None = None
) -> dict | None:
    """Write the data set; returns its row counts (None when the database
    already held leads)."""
    from django.contrib.auth import get_user_model

    from config.demo import demo_users_create
    from leads import demo
    from leads.models import Campaign, Competitor, ContentAsset, FeedbackReason, Lead, Product
    from sla.demo import agreement_versions_create

    if Lead.objects.exists():
        print("The database already holds leads; use --fresh to regenerate.")
        return None
    rng = random.Random(SEED)
    timeline = Timeline(rng, datetime.now(UTC))
    demo_users_create()
    people = demo.sales_people_load()
    demo.products_load()
    window = demo.demo_window(datetime.now(UTC).date())
    generator = demo.MarketingGenerator(window=window, people=people, rng=rng)
    generator.campaigns_load()
    now = timeline.now
    icp, v1, v2 = agreement_versions_create(now)
    reps = [u.pk for u in generator.reps]
    campaigns = list(Campaign.objects.order_by("pk").values_list("pk", "channel"))
    assets = list(ContentAsset.objects.order_by("pk").values_list("pk", flat=True))
    products = list(Product.objects.order_by("pk").values_list("pk", "list_price"))
    competitors = list(Competitor.objects.order_by("pk").values_list("pk", flat=True))
    reasons = {
        kind: list(
            FeedbackReason.objects.filter(applies_to__contains=[kind])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for kind in ("reject", "disqualify")
    }
    two_years = timedelta(days=730)
    hour, day = timedelta(hours=1), timedelta(days=1)

    n_accounts = int(20_000 * scale)
    n_leads = int(200_000 * scale)
    n_touch_per_lead = 10
    n_opps = opportunities if opportunities is not None else int(30_000 * scale)
    counts = {}

    with psycopg.connect(url) as conn:
        t = time.monotonic()
        first_account = next_id(conn, "leads_account")
        account_rows = []
        for i in range(n_accounts):
            employees = int(rng.lognormvariate(6, 1.5)) + 5
            segment = (
                "enterprise" if employees >= 1000 else "mid_market" if employees >= 200 else "smb"
            )
            name = f"Bench Company {i:06d}"
            account_rows.append((
                first_account + i, name, f"benchcompany{i:06d}", f"bench{i:06d}.example",
                rng.choice(INDUSTRIES), employees, rng.choice(COUNTRIES), "", "{}", segment, "",
                now - rng.random() * two_years, now,
            ))  # fmt: skip
        counts["accounts"] = copy_rows(
            conn, "leads_account",
            ["id", "name", "name_key", "domain", "industry", "employees", "country", "region",
             "technologies", "segment", "external_id", "created_at", "updated_at"],
            account_rows,
        )  # fmt: skip
        print(f"  {n_accounts} accounts in {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        first_lead = next_id(conn, "leads_lead")
        stage_values, stage_weights = zip(*LEAD_STAGES, strict=True)
        lead_meta = []  # (id, stage, created_at, {stage: moment})
        changes = []  # leads_leadstagechange rows

        def history(lead_id, stage, created, owner):
            """The lead's moments per stage, and its stage-change rows."""
            moments = {"new": created}
            changes.append((lead_id, "", "new", None, None, "Generated.", created))
            previous, at = "new", created
            contact = None
            for step in STAGE_PATHS[stage]:
                if step == "mql":
                    at = timeline.after(created, day, 30 * day)
                elif step in ("sal", "rejected") or (step == "disqualified" and not contact):
                    at = contact = timeline.after(at, hour, 40 * hour)
                elif step == "sql":
                    at = timeline.after(at, day, 14 * day)
                elif step == "opportunity":
                    at = timeline.after(at, day, 10 * day)
                elif step == "customer":
                    at = timeline.after(at, 10 * day, 120 * day)
                actor = None if step == "mql" else owner or rng.choice(reps)
                reason = None
                if step == "rejected":
                    reason = rng.choice(reasons["reject"])
                elif step == "disqualified":
                    reason = rng.choice(reasons["disqualify"])
                changes.append((lead_id, previous, step, actor, reason, "", at))
                moments[step] = at
                previous = step
            return moments, contact

        def lead_rows():
            for i in range(n_leads):
                lead_id = first_lead + i
                account = first_account + rng.randrange(n_accounts) if rng.random() < 0.6 else None
                stage = rng.choices(stage_values, stage_weights)[0]
                created = now - rng.random() * two_years
                campaign_id, channel = rng.choice(campaigns)
                owner = rng.choice(reps) if stage not in ("new", "recycled") else None
                moments, contact = history(lead_id, stage, created, owner)
                mql_at = moments.get("mql")
                due = mql_at + timedelta(hours=24) if mql_at else None
                version = (v1.pk if mql_at < v2.published_at else v2.pk) if mql_at else None
                employees = int(rng.lognormvariate(6, 1.5)) + 5
                segment = (
                    "enterprise"
                    if employees >= 1000
                    else "mid_market"
                    if employees >= 200
                    else "smb"
                )
                lead_meta.append((lead_id, stage, created, moments))
                yield (
                    lead_id, f"First{i % 997}", f"Last{i:07d}", f"person{i:07d}@bench{i % 50000:05d}.example",
                    "IT Manager", "", f"Bench Company {i % 50000:05d}", f"bench{i % 50000:05d}.example",
                    "United States", "", "software", employees, segment, account, owner, stage,
                    max(moments.values()), channel, campaign_id, rng.randint(0, 100),
                    rng.random() < 0.05, mql_at, due, contact, None, "", 1, created, now,
                    version, icp.pk if version else None,
                )  # fmt: skip

        counts["leads"] = copy_rows(
            conn, "leads_lead",
            ["id", "first_name", "last_name", "email", "title", "phone", "company",
             "company_domain", "country", "region", "industry", "employees", "segment",
             "account_id", "owner_id", "stage", "stage_changed_at", "source_channel",
             "source_campaign_id", "score", "is_high_intent", "mql_at", "response_due_at",
             "first_contact_at", "response_breached_at", "external_id", "version", "created_at",
             "updated_at", "sla_version_id", "icp_version_id"],
            lead_rows(),
        )  # fmt: skip
        print(f"  {n_leads} leads in {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        counts["lead_stage_changes"] = copy_rows(
            conn, "leads_leadstagechange",
            ["lead_id", "from_stage", "to_stage", "actor_id", "reason_id", "note", "changed_at"],
            changes,
        )  # fmt: skip
        print(f"  {len(changes)} lead stage changes in {time.monotonic() - t:.1f} s")
        changes.clear()

        t = time.monotonic()

        def touch_rows():
            for lead_id, _, created, _ in lead_meta:
                spread = min(timedelta(days=60), now - created)
                for _ in range(n_touch_per_lead):
                    campaign_id, channel = rng.choice(campaigns)
                    yield (
                        lead_id, rng.choice(TOUCH_TYPES), created + rng.random() * spread,
                        channel, campaign_id if rng.random() < 0.5 else None,
                        rng.choice(assets) if rng.random() < 0.3 else None, "/", "{}", "demo",
                        None, "", now,
                    )  # fmt: skip

        counts["touchpoints"] = copy_rows(
            conn, "leads_touchpoint",
            ["lead_id", "type", "occurred_at", "channel", "campaign_id", "asset_id", "url",
             "properties", "source", "api_key_id", "external_id", "created_at"],
            touch_rows(),
        )  # fmt: skip
        print(f"  {counts['touchpoints']} touchpoints in {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        deal_stages = DEAL_STAGES
        if open_share is not None:  # keep each group's proportions, rescale the groups
            deal_stages = tuple(
                (stage, weight * (open_share / 30 if stage not in ("won", "lost")
                                  else (1 - open_share) / 70))
                for stage, weight in deal_stages
            )  # fmt: skip
        deal_values, deal_weights = zip(*deal_stages, strict=True)
        converted = [m for m in lead_meta if m[1] in ("opportunity", "customer")]
        channels = [c for _, c in campaigns]
        today = now.date()

        def opp_rows():
            for i in range(n_opps):
                stage = rng.choices(deal_values, deal_weights)[0]
                product_id, price = rng.choice(products)
                source = converted[i] if i < len(converted) and rng.random() < 0.7 else None
                # A converted lead's deal opens when the lead became an opportunity,
                # and a customer's won deal closes the day it became a customer.
                created = source[3]["opportunity"] if source else now - rng.random() * two_years
                closed = None
                if stage == "won" and source and "customer" in source[3]:
                    closed = source[3]["customer"].date()
                elif stage in ("won", "lost"):
                    days = min(rng.randint(10, 120), (today - created.date()).days)
                    closed = created.date() + timedelta(days=days)
                competitor = (
                    rng.choice(competitors) if stage == "lost" and rng.random() < 0.5 else None
                )
                yield (
                    f"Bench deal {i:06d}", first_account + rng.randrange(n_accounts),
                    source[0] if source else None, rng.choice(reps), product_id, stage, created,
                    price, None, closed, None, "", competitor, rng.choice(channels),
                    source is not None, f"bench-{i:06d}", 1, created, now,
                )  # fmt: skip

        counts["opportunities"] = copy_rows(
            conn, "leads_opportunity",
            ["name", "account_id", "source_lead_id", "owner_id", "product_id", "stage",
             "stage_changed_at", "amount", "expected_close_on", "closed_on", "loss_reason_id",
             "loss_note", "competitor_id", "source_channel", "is_marketing_sourced",
             "external_id", "version", "created_at", "updated_at"],
            opp_rows(),
        )  # fmt: skip
        print(f"  {n_opps} opportunities in {time.monotonic() - t:.1f} s")
        for table in ("leads_account", "leads_lead", "leads_leadstagechange", "leads_touchpoint",
                      "leads_opportunity"):  # fmt: skip
            sequence_sync(conn, table)
        conn.commit()

    t = time.monotonic()
    User = get_user_model()
    users = {u.username: u for u in User.objects.filter(username__in=["marketing", "manager",
                                                                         "revops"])}  # fmt: skip
    counts |= retrospectives_create(rng, int(1_000 * scale), users=users, icp=icp, v2=v2)
    print(f"  {counts['retrospectives']} retrospectives in {time.monotonic() - t:.1f} s")
    sla_draft_create(users["revops"])

    with psycopg.connect(url, autocommit=True) as conn:
        t = time.monotonic()
        conn.execute("VACUUM (ANALYZE)")
        print(f"  vacuum and analyze in {time.monotonic() - t:.1f} s")
    return counts


def retrospectives_create(rng, count: int, *, users: dict, icp, v2) -> dict:
    """`count` retrospectives of closed deals, both teams taking part, with
    one to three decision drivers each and an action item on about a third.
    bulk_create: a few thousand rows."""
    from django.db import connection, transaction

    from leads.models import Campaign, Opportunity
    from reporting.models import (
        ActionItem,
        DecisionDriver,
        DriverCategory,
        Retrospective,
        RetrospectiveParticipant,
    )
    from sla.models import Persona

    closed = list(
        Opportunity.objects.filter(stage__in=("won", "lost"))
        .order_by("pk")
        .values_list("pk", "stage", "owner_id", "closed_on", "competitor_id")
    )
    chosen = sorted(rng.sample(closed, min(count, len(closed))))
    categories = list(DriverCategory.objects.order_by("pk").values_list("pk", flat=True))
    campaigns = list(Campaign.objects.order_by("pk").values_list("pk", flat=True))
    personas = list(Persona.objects.filter(version=icp).order_by("pk").values_list("pk", flat=True))
    decided = ("discovery", "demo", "proposal", "negotiation")
    today = datetime.now(UTC).date()
    retrospectives = []
    for pk, stage, _owner, closed_on, competitor_id in chosen:
        loss_type = ""
        if stage == "lost":
            loss_type = "competitor" if competitor_id else rng.choice(("no_decision", "unknown"))
        retrospectives.append(Retrospective(
            opportunity_id=pk, outcome=stage, loss_type=loss_type,
            competitor_id=competitor_id if stage == "lost" else None,
            decided_at_stage=rng.choice(decided), campaign_id=rng.choice(campaigns),
            pitch_match=rng.choice(("yes", "yes", "partly", "no")),
            learnings="What decided this deal, and what both teams change next.",
            key_quotes="The buyer's words, one quote a line.",
            held_on=min(closed_on + timedelta(days=rng.randint(2, 20)), today),
            created_by=users["manager"],
        ))  # fmt: skip
    participants, drivers, items = [], [], []
    targets = ("other", "other", "sla", "icp", "persona", "campaign")
    with transaction.atomic():
        Retrospective.objects.bulk_create(retrospectives, batch_size=1000)
        for retro, (_, stage, owner_id, _, _) in zip(retrospectives, chosen, strict=True):
            team = {users["marketing"].pk: "marketing", owner_id: "sales"}
            if rng.random() < 0.3:
                team.setdefault(users["manager"].pk, "sales")
            participants += [
                RetrospectiveParticipant(retrospective=retro, user_id=user_id, team=name)
                for user_id, name in team.items()
            ]
            helped = 0.7 if stage == "won" else 0.3
            drivers += [
                DecisionDriver(
                    retrospective=retro, category_id=category,
                    sentiment="helped" if rng.random() < helped else "hurt",
                    note="What the buyer weighed.",
                )
                for category in rng.sample(categories, rng.randint(1, 3))
            ]  # fmt: skip
            for _ in range(rng.choices((0, 1, 2), (65, 30, 5))[0]):
                kind = rng.choice(targets)
                status = rng.choices(("open", "in_progress", "done", "dropped"), (5, 2, 2, 1))[0]
                items.append(ActionItem(
                    retrospective=retro, title="Change what this deal taught us",
                    owner=users[rng.choice(("marketing", "manager", "revops"))],
                    due_on=retro.held_on + timedelta(days=rng.randint(14, 45)),
                    status=status, target_kind=kind,
                    sla_version=v2 if kind == "sla" else None,
                    icp_version=icp if kind == "icp" else None,
                    persona_id=rng.choice(personas) if kind == "persona" else None,
                    campaign_id=rng.choice(campaigns) if kind == "campaign" else None,
                    target_note="The sales playbook" if kind == "other" else "",
                    closed_at=datetime.now(UTC) if status in ("done", "dropped") else None,
                    created_by=users["marketing"],
                ))  # fmt: skip
        RetrospectiveParticipant.objects.bulk_create(participants, batch_size=2000)
        DecisionDriver.objects.bulk_create(drivers, batch_size=2000)
        ActionItem.objects.bulk_create(items, batch_size=2000)
        with connection.cursor() as cursor:
            # Written when they were held, not when the generator ran.
            cursor.execute("UPDATE reporting_retrospective SET created_at = held_on + time '15:00'")
            cursor.execute(
                "UPDATE reporting_actionitem i SET created_at = r.created_at "
                "FROM reporting_retrospective r WHERE r.id = i.retrospective_id"
            )
    return {
        "retrospectives": len(retrospectives),
        "retrospective_participants": len(participants),
        "decision_drivers": len(drivers),
        "action_items": len(items),
    }


def sla_draft_create(actor) -> None:
    """SLA v3, a draft that lowers the MQL threshold: what the impact
    preview evaluates."""
    from sla import versions
    from sla.models import SlaVersion

    draft = versions.sla_draft_create(actor=actor, title="Lower the MQL threshold to 55")
    SlaVersion.objects.filter(pk=draft.pk).update(
        mql_threshold=55,
        changelog="Marketing proposes a lower threshold: more MQLs, with the behaviour rules kept.",
    )


if __name__ == "__main__":
    main()
