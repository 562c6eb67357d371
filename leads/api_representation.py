"""How the ingestion API shows a lead: `GET /api/v1/leads/{id}`, and the body
of `POST /api/v1/leads`. `leads.api_schema` describes the same shape."""

from datetime import datetime

from leads.models import Lead


class SlaStatus:
    """Where a lead stands against its response clock."""

    NOT_STARTED = "not_started"  # no clock: not (yet) an MQL, or no due time set
    ON_TIME = "on_time"  # clock running, due time not reached
    OVERDUE = "overdue"  # due time passed, no contact, breach not yet recorded
    BREACHED = "breached"  # breach recorded, or first contact came after the due time
    MET = "met"  # first contact by the due time

    ALL = (NOT_STARTED, ON_TIME, OVERDUE, BREACHED, MET)


def lead_sla_status(lead: Lead, *, now: datetime) -> str:
    """The lead's SLA status, derived from its clock fields alone (no queries)."""
    if lead.response_breached_at is not None:
        return SlaStatus.BREACHED
    if lead.first_contact_at is not None:
        if lead.response_due_at is not None and lead.first_contact_at > lead.response_due_at:
            return SlaStatus.BREACHED
        return SlaStatus.MET if lead.mql_at is not None else SlaStatus.NOT_STARTED
    if lead.mql_at is None or lead.response_due_at is None:
        return SlaStatus.NOT_STARTED
    return SlaStatus.OVERDUE if now > lead.response_due_at else SlaStatus.ON_TIME


def lead_score(lead: Lead) -> dict:
    """The lead's score and the parts of its latest evaluation, each
    `{"kind": "fit" | "engagement" | "cap", "label": str, "points": number}`,
    with the SLA and ICP versions it was evaluated under (none before the
    first evaluation). One query."""
    from sla.models import ScoreEvaluation

    evaluation = (
        ScoreEvaluation.objects.select_related("sla_version", "icp_version")
        .filter(lead=lead)
        .order_by("-evaluated_at")
        .first()
    )
    return {
        "total": lead.score,
        "parts": evaluation.parts if evaluation else [],
        "sla_version": evaluation.sla_version.label if evaluation else None,
        "icp_version": evaluation.icp_version.label if evaluation else None,
    }


def lead_for_api(lead_id: int) -> Lead | None:
    """The lead with what its representation shows, in one query."""
    return (
        Lead.objects.select_related("owner", "account", "source_campaign")
        .filter(pk=lead_id)
        .first()
    )


def lead_representation(lead: Lead, *, now: datetime) -> dict:
    """The lead as the API shows it. Expects `lead_for_api`'s related rows."""
    return {
        "id": lead.pk,
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "title": lead.title,
        "phone": lead.phone,
        "company": lead.company,
        "company_domain": lead.company_domain,
        "country": lead.country,
        "industry": lead.industry,
        "employees": lead.employees,
        "segment": lead.segment or None,
        "account": (
            {"id": lead.account.pk, "name": lead.account.name} if lead.account_id else None
        ),
        "stage": lead.stage,
        "score": lead_score(lead),
        "is_high_intent": lead.is_high_intent,
        "owner": lead.owner.get_username() if lead.owner_id else None,
        "source": {
            "channel": lead.source_channel or None,
            "campaign": lead.source_campaign.name if lead.source_campaign_id else None,
        },
        "sla": {
            "status": lead_sla_status(lead, now=now),
            "mql_at": lead.mql_at,
            "response_due_at": lead.response_due_at,
            "first_contact_at": lead.first_contact_at,
            "response_breached_at": lead.response_breached_at,
        },
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
    }
