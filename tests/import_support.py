"""Helpers and fixtures shared by the CSV import tests."""

import csv
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import Product

MAVEN_DIR = Path(settings.SAMPLE_DATA_DIR)


def csv_bytes(header: list[str], rows: list[list], *, delimiter=",", encoding="utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploads go to a temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def maven_people_and_products(db):
    """The sample's 7 products and 35 sales agents (as users named like the CSV)."""
    with open(MAVEN_DIR / "products.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            Product.objects.create(
                name=row["product"], series=row["series"], list_price=row["sales_price"]
            )
    User = get_user_model()
    with open(MAVEN_DIR / "sales_teams.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            first, last = row["sales_agent"].split(" ", 1)
            User.objects.create_user(
                username=row["sales_agent"].lower().replace(" ", "."),
                first_name=first,
                last_name=last,
            )


class WritesCaptured(CaptureQueriesContext):
    """Capture queries; `.writes` lists INSERT/UPDATE/DELETE statements run."""

    def __init__(self):
        super().__init__(connection)

    @property
    def writes(self) -> list[str]:
        return [
            q["sql"]
            for q in self.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        ]


@pytest.fixture
def tasks_inline():
    """Tasks sent in this test run inline (eagerly) instead of going to the
    broker: for view tests that run on-commit callbacks. Only this test."""
    from config.celery import app

    previous = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous
