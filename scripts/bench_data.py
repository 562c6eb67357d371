#!/usr/bin/env python
"""Generate a reproducible benchmark data set with PostgreSQL's COPY.

    .venv/bin/python scripts/bench_data.py [--scale 1.0] [--database accord_bench] [--fresh]
        [--opportunities N] [--open-deal-share S]

At scale 1: 20,000 accounts, 200,000 leads, 2,000,000 touchpoints and
30,000 opportunities (30% open; --opportunities and --open-deal-share
change that, e.g. 40000 and 0.75 for 30,000 open deals), with the demo's
people, products, campaigns and content. The same arguments and seed give
the same rows. The database (default
accord_bench on the server of $BENCH_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432) is created and migrated first;
--fresh drops it before. Never point it at a database you care about.
"""

import argparse
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
    generate(url, args.scale, opportunities=args.opportunities, open_share=args.open_deal_share)
    print(f"Benchmark data at scale {args.scale} in {time.monotonic() - started:.0f} s ({url}).")


def generate(
    url: str, scale: float, *, opportunities: int | None = None, open_share: float | None = None
) -> None:
    from config.demo import demo_users_create
    from leads import demo
    from leads.models import Campaign, ContentAsset, Lead, Product

    if Lead.objects.exists():
        print("The database already holds leads; use --fresh to regenerate.")
        return
    rng = random.Random(SEED)
    demo_users_create()
    people = demo.sales_people_load()
    demo.products_load()
    window = demo.demo_window(datetime.now(UTC).date())
    generator = demo.MarketingGenerator(window=window, people=people, rng=rng)
    generator.campaigns_load()
    reps = [u.pk for u in generator.reps]
    campaigns = list(Campaign.objects.values_list("pk", "channel"))
    assets = list(ContentAsset.objects.values_list("pk", flat=True))
    products = list(Product.objects.values_list("pk", "list_price"))
    now = datetime.now(UTC)
    two_years = timedelta(days=730)

    n_accounts = int(20_000 * scale)
    n_leads = int(200_000 * scale)
    n_touch_per_lead = 10
    n_opps = opportunities if opportunities is not None else int(30_000 * scale)

    with psycopg.connect(url) as conn:
        t = time.monotonic()
        first_account = next_id(conn, "leads_account")
        industries = ("software", "retail", "medical", "finance", "technology", "services",
                      "telecommunications", "marketing", "employment", "entertainment")  # fmt: skip
        countries = ("United States", "Germany", "Japan", "Brazil", "Kenya", "Norway")
        account_rows = []
        for i in range(n_accounts):
            employees = int(rng.lognormvariate(6, 1.5)) + 5
            segment = (
                "enterprise" if employees >= 1000 else "mid_market" if employees >= 200 else "smb"
            )
            name = f"Bench Company {i:06d}"
            account_rows.append((
                first_account + i, name, f"benchcompany{i:06d}", f"bench{i:06d}.example",
                rng.choice(industries), employees, rng.choice(countries), "", "{}", segment, "",
                now - rng.random() * two_years, now,
            ))  # fmt: skip
        copy_rows(
            conn, "leads_account",
            ["id", "name", "name_key", "domain", "industry", "employees", "country", "region",
             "technologies", "segment", "external_id", "created_at", "updated_at"],
            account_rows,
        )  # fmt: skip
        print(f"  {n_accounts} accounts in {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        first_lead = next_id(conn, "leads_lead")
        stages = (("new", 40), ("mql", 8), ("sal", 8), ("sql", 5), ("opportunity", 6),
                  ("customer", 5), ("recycled", 18), ("disqualified", 10))  # fmt: skip
        stage_values, stage_weights = zip(*stages, strict=True)
        channels = [c for _, c in campaigns]
        lead_meta = []

        def lead_rows():
            for i in range(n_leads):
                lead_id = first_lead + i
                account = first_account + rng.randrange(n_accounts) if rng.random() < 0.6 else None
                stage = rng.choices(stage_values, stage_weights)[0]
                created = now - rng.random() * two_years
                campaign_id, channel = rng.choice(campaigns)
                owner = rng.choice(reps) if stage not in ("new", "recycled") else None
                mql_at = created + timedelta(days=rng.randint(1, 30)) if stage != "new" else None
                due = mql_at + timedelta(hours=24) if mql_at else None
                contact = (
                    mql_at + timedelta(hours=rng.randint(1, 40))
                    if mql_at and stage != "mql" else None
                )  # fmt: skip
                employees = int(rng.lognormvariate(6, 1.5)) + 5
                segment = (
                    "enterprise"
                    if employees >= 1000
                    else "mid_market"
                    if employees >= 200
                    else "smb"
                )
                lead_meta.append((lead_id, stage, created))
                yield (
                    lead_id, f"First{i % 997}", f"Last{i:07d}", f"person{i:07d}@bench{i % 50000:05d}.example",
                    "IT Manager", "", f"Bench Company {i % 50000:05d}", f"bench{i % 50000:05d}.example",
                    "United States", "", "software", employees, segment, account, owner, stage,
                    created, channel, campaign_id, rng.randint(0, 100), rng.random() < 0.05,
                    mql_at, due, contact, None, "", 1, created, now,
                )  # fmt: skip

        copy_rows(
            conn, "leads_lead",
            ["id", "first_name", "last_name", "email", "title", "phone", "company",
             "company_domain", "country", "region", "industry", "employees", "segment",
             "account_id", "owner_id", "stage", "stage_changed_at", "source_channel",
             "source_campaign_id", "score", "is_high_intent", "mql_at", "response_due_at",
             "first_contact_at", "response_breached_at", "external_id", "version", "created_at",
             "updated_at"],
            lead_rows(),
        )  # fmt: skip
        print(f"  {n_leads} leads in {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        copy_rows(
            conn,
            "leads_leadstagechange",
            ["lead_id", "from_stage", "to_stage", "note", "changed_at"],
            ((lead_id, "", "new", "Generated.", created) for lead_id, _, created in lead_meta),
        )
        types = ("page_view", "page_view", "page_view", "email_open", "email_click",
                 "content_download", "webinar_attended", "ad_click", "form_submit", "demo_request")  # fmt: skip

        def touch_rows():
            for lead_id, _, created in lead_meta:
                for _ in range(n_touch_per_lead):
                    campaign_id, channel = rng.choice(campaigns)
                    yield (
                        lead_id, rng.choice(types), created + rng.random() * timedelta(days=60),
                        channel, campaign_id if rng.random() < 0.5 else None,
                        rng.choice(assets) if rng.random() < 0.3 else None, "/", "{}", "demo",
                        None, "", now,
                    )  # fmt: skip

        count = copy_rows(
            conn, "leads_touchpoint",
            ["lead_id", "type", "occurred_at", "channel", "campaign_id", "asset_id", "url",
             "properties", "source", "api_key_id", "external_id", "created_at"],
            touch_rows(),
        )  # fmt: skip
        print(f"  {count} touchpoints in {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        opp_stages = (("discovery", 10), ("demo", 8), ("proposal", 7), ("negotiation", 5),
                      ("won", 40), ("lost", 30))  # fmt: skip
        if open_share is not None:  # keep each group's proportions, rescale the groups
            opp_stages = tuple(
                (stage, weight * (open_share / 30 if stage not in ("won", "lost")
                                  else (1 - open_share) / 70))
                for stage, weight in opp_stages
            )  # fmt: skip
        opp_values, opp_weights = zip(*opp_stages, strict=True)
        converted = [m for m in lead_meta if m[1] in ("opportunity", "customer")]

        def opp_rows():
            for i in range(n_opps):
                stage = rng.choices(opp_values, opp_weights)[0]
                product_id, price = rng.choice(products)
                created = now - rng.random() * two_years
                source = converted[i][0] if i < len(converted) and rng.random() < 0.7 else None
                closed = (
                    (created + timedelta(days=rng.randint(10, 120))).date()
                    if stage in ("won", "lost")
                    else None
                )
                yield (
                    f"Bench deal {i:06d}", first_account + rng.randrange(n_accounts), source,
                    rng.choice(reps), product_id, stage, created, price, None, closed, None, "",
                    None, rng.choice(channels), source is not None, f"bench-{i:06d}", 1, created, now,
                )  # fmt: skip

        copy_rows(
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
    with psycopg.connect(url, autocommit=True) as conn:
        t = time.monotonic()
        conn.execute("ANALYZE")
        print(f"  analyze in {time.monotonic() - t:.1f} s")


if __name__ == "__main__":
    main()
