"""The four roles (Django groups) and what each may change.

Everyone can read everything; what a role may change is checked in views and
services with `has_role`. Django model permissions matter only for the admin,
which RevOps admins use as the configuration back office.
"""

MARKETING = "Marketing"
SALES_REP = "Sales rep"
SALES_MANAGER = "Sales manager"
REVOPS_ADMIN = "RevOps admin"
ROLES = (MARKETING, SALES_REP, SALES_MANAGER, REVOPS_ADMIN)

# Apps whose every model a RevOps admin manages in the admin (axes: login
# lockouts, which an admin lifts by deleting the attempt).
ADMIN_APPS = ("leads", "sla", "reporting", "config", "django_celery_beat", "axes")
ADMIN_AUTH_MODELS = ("user", "group")


def role_names(user) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_accord_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._accord_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(role_names(user) & set(roles))


def is_sales(user) -> bool:
    return has_role(user, SALES_REP, SALES_MANAGER)


def groups_create(*, group_model) -> None:
    """Create the role groups if missing. Safe to run again."""
    for name in ROLES:
        group_model.objects.get_or_create(name=name)


def permissions_sync() -> None:
    """Give each role the model permissions it needs, adding those of new models.

    RevOps admin: every permission on Accord's models, users, groups and
    schedules. The other roles: view permissions (everyone reads everything).
    Idempotent.
    """
    from django.contrib.auth.models import Group, Permission
    from django.db.models import Q

    groups = {group.name: group for group in Group.objects.filter(name__in=ROLES)}
    if not groups:
        return
    admin_perms = Permission.objects.filter(
        Q(content_type__app_label__in=ADMIN_APPS)
        | Q(content_type__app_label="auth", content_type__model__in=ADMIN_AUTH_MODELS)
    )
    view_perms = admin_perms.filter(codename__startswith="view_")
    if REVOPS_ADMIN in groups:
        groups[REVOPS_ADMIN].permissions.add(*admin_perms)
    for name in (MARKETING, SALES_REP, SALES_MANAGER):
        if name in groups:
            groups[name].permissions.add(*view_perms)


def sync_after_migrate(sender, **kwargs):
    """After migrate (and after a test flush), groups exist with their permissions."""
    if sender.name in ADMIN_APPS:
        from django.contrib.auth.models import Group

        groups_create(group_model=Group)
        permissions_sync()
