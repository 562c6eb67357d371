"""What moving a card to another column of a board means.

A deal's columns are its stages, so a deal board move is exactly
`services.opportunity_move`. The handoff board's columns map onto the lead
transitions the lead page offers: MQL → SAL accepts, MQL or SAL → Recycled
rejects (with a reason), SAL → SQL qualifies. Every other move is refused
with a sentence saying why and what to do instead.
"""

from leads import permissions, services
from leads.models import Lead, LeadStage, Opportunity

# (from column, to column) -> the lead transition it means.
HANDOFF_MOVES = {
    (LeadStage.MQL, LeadStage.SAL): "accept",
    (LeadStage.MQL, LeadStage.RECYCLED): "reject",
    (LeadStage.SAL, LeadStage.RECYCLED): "reject",
    (LeadStage.SAL, LeadStage.SQL): "qualify",
}

# Moves that need a form first (the board opens it before anything moves).
HANDOFF_MOVES_WITH_DETAILS = frozenset({LeadStage.RECYCLED})


def handoff_refusal(from_stage: str, to_stage: str) -> str:
    """Why a handoff board move that maps to no transition is refused."""
    if from_stage == LeadStage.RECYCLED:
        return "A recycled lead returns to MQL when it qualifies again; it cannot be dragged back."
    if to_stage == LeadStage.MQL:
        return (
            "A lead does not go back to MQL once a rep has accepted it. "
            "Drag it to Recycled (with a reason) if it is not for sales."
        )
    if from_stage == LeadStage.MQL and to_stage == LeadStage.SQL:
        return "Accept the lead first (drag it to SAL), then qualify it."
    if from_stage == LeadStage.SQL and to_stage == LeadStage.SAL:
        return (
            "A qualified lead does not go back to SAL: convert it or disqualify it from its page."
        )
    if from_stage == LeadStage.SQL and to_stage == LeadStage.RECYCLED:
        return (
            "An SQL is past rejection: convert it, or disqualify it (with a reason) from its page."
        )
    return "Leads cannot move between these columns."


def _conflict(record, where: str) -> services.ConflictError:
    return services.ConflictError(
        f"{record} was changed by someone else (it is now {where}). Your move was not applied.",
        current=record,
    )


def lead_board_move_check(*, lead: Lead, to_stage: str, expected_version: int | None) -> str:
    """The transition a handoff board move of `lead` (as read now) means.
    Raises ConflictError when the lead changed since `expected_version`, and
    TransitionError (saying why) for a move no transition allows. Reads only:
    the board asks it before opening a form, the move itself asks it again."""
    if expected_version is not None and lead.version != expected_version:
        raise _conflict(lead, lead.get_stage_display())
    if lead.stage == to_stage:
        raise services.TransitionError(f"{lead} is already {lead.get_stage_display()}.")
    transition = HANDOFF_MOVES.get((lead.stage, to_stage))
    if transition is None:
        raise services.TransitionError(handoff_refusal(lead.stage, to_stage))
    return transition


def deal_board_move_check(
    *, opportunity: Opportunity, to_stage: str, expected_version: int | None
) -> None:
    """Refuse early, before the board opens a won or lost form, a move that
    `services.opportunity_move` would refuse anyway: a stale version, the same
    stage, a closed deal. Reads only."""
    if expected_version is not None and opportunity.version != expected_version:
        raise _conflict(opportunity, f"in {opportunity.get_stage_display()}")
    if opportunity.stage == to_stage:
        raise services.TransitionError(
            f"{opportunity} is already in {opportunity.get_stage_display()}."
        )
    if not opportunity.is_open:
        raise services.TransitionError(
            f"{opportunity} is closed ({opportunity.get_stage_display()}); closed deals do not move."
        )


def lead_board_move(
    *,
    lead: Lead,
    actor,
    to_stage: str,
    expected_version: int | None = None,
    reason=None,
    note: str = "",
    objections=(),
    competitor=None,
) -> Lead:
    """Move a lead to a handoff board column through the lead transition the
    move means (see HANDOFF_MOVES); the lead service it calls locks the row,
    checks stage and version again and writes the history.

    Raises PermissionDenied when the actor may not work the lead,
    ConflictError (with the lead as it is now) when the lead changed since
    `expected_version`, TransitionError for a move no transition allows.
    Runs in the transaction of the service it calls."""
    permissions.require(permissions.can_work_lead(actor, lead), "You cannot work this lead.")
    current = Lead.objects.get(pk=lead.pk)
    transition = lead_board_move_check(
        lead=current, to_stage=to_stage, expected_version=expected_version
    )
    if transition == "accept":
        return services.lead_accept(lead=current, actor=actor, expected_version=current.version)
    if transition == "qualify":
        return services.lead_qualify(lead=current, actor=actor, expected_version=current.version)
    return services.lead_reject(
        lead=current,
        actor=actor,
        reason=reason,
        note=note,
        objections=objections,
        competitor=competitor,
        expected_version=current.version,
    )
