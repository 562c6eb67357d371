"""Demo data: what `make demo` loads, in order. Every loader is idempotent,
so a second `make demo` reuses what is there."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.module_loading import import_string

from config import roles

DEMO_PASSWORD = "accord-demo"

# username, first name, last name, role, is_staff
DEMO_USERS = (
    ("marketing", "Mia", "Marketer", roles.MARKETING, False),
    # The sales demo users are people of the sample data (shared/data/maven-crm):
    # Anna Snelling sells in Dustin Brinkmann's Central team.
    ("rep", "Anna", "Snelling", roles.SALES_REP, False),
    ("manager", "Dustin", "Brinkmann", roles.SALES_MANAGER, False),
    ("revops", "Rosa", "RevOps", roles.REVOPS_ADMIN, True),
)

# Loaders run after the demo users exist; each app adds its own as it grows.
LOADERS: tuple[str, ...] = (
    "leads.demo.demo_load",
    "sla.demo.agreement_load",
    "reporting.winloss_demo.winloss_load",
    "reporting.demo.reporting_load",
)


@transaction.atomic
def demo_users_create() -> list[tuple[str, str, str]]:
    """One user per role. Returns (username, password, role) rows to print.
    Existing users keep their data; their password is reset to the demo one."""
    User = get_user_model()
    rows = []
    for username, first_name, last_name, role, is_staff in DEMO_USERS:
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@accord.example",
                "is_staff": is_staff,
            },
        )
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=role))
        rows.append((username, DEMO_PASSWORD, role))
    return rows


def demo_data_load(*, stdout=None) -> None:
    for dotted_path in LOADERS:
        loader = import_string(dotted_path)
        if stdout:
            stdout.write(
                f"Loading demo data: {loader.__doc__.splitlines()[0] if loader.__doc__ else dotted_path}"
            )
        loader(stdout=stdout)
