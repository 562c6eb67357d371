"""Who may change what. Everyone reads everything; these rules decide writes.

Views check them to show or hide controls and to refuse requests; services
check them again, because a client can post to any URL.
"""

from django.core.exceptions import PermissionDenied

from config import roles


def managed_user_ids(user) -> set[int]:
    """Ids of the sellers in the teams this user manages (including the user)."""
    from leads.models import TeamMembership

    cached = getattr(user, "_accord_managed_ids", None)
    if cached is None:
        cached = set(
            TeamMembership.objects.filter(team__manager=user).values_list("user_id", flat=True)
        )
        cached.add(user.pk)
        user._accord_managed_ids = cached
    return cached


def is_admin(user) -> bool:
    return user.is_superuser or roles.has_role(user, roles.REVOPS_ADMIN)


def can_work_lead(user, lead) -> bool:
    """Accept, reject, log contact, qualify, convert, disqualify.

    A rep, on a lead they own; a manager, on their team's leads and on
    unassigned ones; a RevOps admin, on any.
    """
    if not user.is_authenticated:
        return False
    if is_admin(user):
        return True
    if roles.has_role(user, roles.SALES_MANAGER):
        return lead.owner_id is None or lead.owner_id in managed_user_ids(user)
    if roles.has_role(user, roles.SALES_REP):
        return lead.owner_id == user.pk
    return False


def can_assign_lead(user, lead) -> bool:
    """Reassign a lead to another seller: managers (their team's or unassigned
    leads) and RevOps admins."""
    if is_admin(user):
        return True
    return roles.has_role(user, roles.SALES_MANAGER) and (
        lead.owner_id is None or lead.owner_id in managed_user_ids(user)
    )


def can_edit_lead(user, lead) -> bool:
    """Correct a lead's contact and company data: marketing, and whoever may work it."""
    return roles.has_role(user, roles.MARKETING) or can_work_lead(user, lead)


def can_create_leads(user) -> bool:
    return is_admin(user) or roles.has_role(
        user, roles.MARKETING, roles.SALES_REP, roles.SALES_MANAGER
    )


def can_disqualify_lead(user, lead) -> bool:
    """Sales disqualifies the leads it works; marketing may disqualify leads it
    still nurtures (new or recycled), e.g. bad data."""
    from leads.models import LeadStage

    if can_work_lead(user, lead):
        return True
    return roles.has_role(user, roles.MARKETING) and lead.stage in (
        LeadStage.NEW,
        LeadStage.RECYCLED,
    )


def can_work_opportunity(user, opportunity) -> bool:
    if not user.is_authenticated:
        return False
    if is_admin(user):
        return True
    if roles.has_role(user, roles.SALES_MANAGER):
        return opportunity.owner_id is None or opportunity.owner_id in managed_user_ids(user)
    if roles.has_role(user, roles.SALES_REP):
        return opportunity.owner_id == user.pk
    return False


def can_import(user) -> bool:
    return is_admin(user) or roles.has_role(user, roles.MARKETING)


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)
