"""Factories for win/loss tests: closed deals, retrospectives, drivers."""

import importlib
from datetime import date
from decimal import Decimal

from django.apps import apps

from leads.models import OpportunityStage
from reporting.models import (
    ActionItem,
    DecisionDriver,
    DriverCategory,
    Retrospective,
    RetrospectiveParticipant,
)
from tests.factories import make_account, make_opportunity


def driver_categories_seed() -> None:
    """The seven categories the migration seeds (again after a transactional
    test flushed them)."""
    if not DriverCategory.objects.exists():
        migration = importlib.import_module("reporting.migrations.0001_initial")
        migration.driver_categories_seed(apps, None)


def category(code: str) -> DriverCategory:
    driver_categories_seed()
    return DriverCategory.objects.get(code=code)


def make_closed_deal(*, stage="lost", amount=Decimal("20000"), closed_on=None, **fields):
    fields.setdefault("account", make_account())
    return make_opportunity(
        stage=stage, amount=amount, closed_on=closed_on or date.today(), **fields
    )


def make_retrospective(
    *,
    opportunity=None,
    participants=(),
    drivers=(),
    loss_type=None,
    **fields,
) -> Retrospective:
    """A retrospective written straight to the database (no service rules):
    `drivers` are (category code, sentiment) pairs."""
    opportunity = opportunity or make_closed_deal()
    outcome = opportunity.stage
    if loss_type is None:
        loss_type = "no_decision" if outcome == OpportunityStage.LOST else ""
    retrospective = Retrospective.objects.create(
        opportunity=opportunity, outcome=outcome, loss_type=loss_type, **fields
    )
    for user, team in participants:
        RetrospectiveParticipant.objects.create(retrospective=retrospective, user=user, team=team)
    for code, sentiment in drivers:
        DecisionDriver.objects.create(
            retrospective=retrospective, category=category(code), sentiment=sentiment
        )
    return retrospective


def make_action_item(retrospective, *, owner, **fields) -> ActionItem:
    fields.setdefault("title", "Change something")
    fields.setdefault("due_on", date.today())
    fields.setdefault("target_kind", ActionItem.TargetKind.OTHER)
    fields.setdefault("target_note", "The playbook")
    return ActionItem.objects.create(retrospective=retrospective, owner=owner, **fields)
