from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from config.queue import enqueue_on_commit
from sla.models import Notification


def notification_send(*, recipient, title: str, body: str = "", url: str = "", email: bool = True):
    """Notify a user in the app and, once the surrounding transaction has
    committed, by email (through a task). If the transaction rolls back,
    nothing is shown and nothing is sent."""
    from sla.tasks import notification_email

    wanted = bool(email and recipient.email)
    notification = Notification.objects.create(
        recipient=recipient, title=title, body=body, url=url, email_wanted=wanted
    )
    if wanted:
        enqueue_on_commit(notification_email, notification.pk)
    return notification


def notifications_send(messages) -> list[Notification]:
    """Many notifications at once: `messages` are (recipient, title, body, url)
    tuples. One insert, and one email task for all of them after commit."""
    from sla.tasks import notification_emails

    notifications = Notification.objects.bulk_create(
        Notification(
            recipient=recipient, title=title, body=body, url=url, email_wanted=bool(recipient.email)
        )
        for recipient, title, body, url in messages
        if recipient is not None
    )
    emailed = [n.pk for n in notifications if n.recipient.email]
    if emailed:
        enqueue_on_commit(notification_emails, emailed)
    return notifications


def notification_mark_read(*, notification: Notification) -> None:
    """Idempotent: a notification already read keeps its first read time."""
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def notifications_mark_all_read(*, user) -> int:
    return Notification.objects.for_user(user).unread().update(read_at=timezone.now())


# --- Qualification: MQL, routing, the response clock -----------------------------------


def leads_qualify(evaluations, *, sla, icp, now) -> list:
    """Make qualifying leads MQLs: stamp the SLA and ICP versions, route to an
    owner, start the response clock (the SLA's time for hand-raisers or for
    the others, on its business calendar), and notify the owners (in the app
    now, by email after commit). Leads that are not new or recycled any more
    are skipped. Set-based: a fixed number of statements for any batch.
    Must run in a transaction (the caller's). Returns the leads qualified."""
    from leads.models import Lead, LeadStage
    from leads.services import leads_mark_mql
    from sla import routing
    from sla.clocks import BusinessCalendar, business_due

    by_id = {e.lead_id: e for e in evaluations}
    if not by_id:
        return []
    candidates = list(
        Lead.objects.select_related("account").filter(
            pk__in=by_id, stage__in=(LeadStage.NEW, LeadStage.RECYCLED)
        )
    )
    if not candidates:
        return []
    calendar = BusinessCalendar.of(sla)
    owners = routing.owners_for(candidates, now=now)
    due = {
        high: business_due(now, hours, calendar)
        for high, hours in ((True, sla.response_hours_high_intent),
                            (False, sla.response_hours_standard))
    }  # fmt: skip
    stamps, notes = {}, {}
    for lead in candidates:
        evaluation = by_id[lead.pk]
        lead.is_high_intent = evaluation.high_intent or lead.is_high_intent
        owner = owners[lead.pk]
        lead.owner = owner
        stamps[lead.pk] = {
            "owner_id": owner.pk if owner else None,
            "sla_version_id": sla.pk,
            "icp_version_id": icp.pk,
            "is_high_intent": lead.is_high_intent,
            "response_due_at": due[lead.is_high_intent],
        }
        notes[lead.pk] = f"Qualified under SLA {sla.label} and ICP {icp.label}: " + " ".join(
            evaluation.reasons
        )
    moved = set(leads_mark_mql(stamps=stamps, when=now, notes=notes))
    qualified = [lead for lead in candidates if lead.pk in moved]
    messages = []
    for lead in qualified:
        hours = (
            sla.response_hours_high_intent if lead.is_high_intent else sla.response_hours_standard
        )
        messages.append((
            lead.owner,
            f"New {'high-intent ' if lead.is_high_intent else ''}MQL: {lead}",
            f"{lead.title} at {lead.company}. Respond within {_hours(hours)} business "
            f"hour{'s' if hours != 1 else ''}.",
            lead.get_absolute_url(),
        ))  # fmt: skip
    notifications_send(messages)
    return qualified


def response_clock_breach(*, lead_id: int, now) -> bool:
    """Mark a lead's response clock breached. Idempotent: of two sweeps that
    find the same lead, one wins (a conditional UPDATE), and the breach row is
    unique per clock. Notifies the owner and, if the SLA says so, the owner's
    manager, once."""
    from leads.models import Lead
    from sla.models import Breach

    with transaction.atomic():
        won = Lead.objects.filter(
            pk=lead_id,
            first_contact_at__isnull=True,
            response_breached_at__isnull=True,
            response_due_at__lte=now,
        ).update(response_breached_at=now)
        if not won:
            return False
        lead = Lead.objects.select_related("owner", "sla_version").get(pk=lead_id)
        breach, created = Breach.objects.get_or_create(
            lead=lead,
            due_at=lead.response_due_at,
            defaults={"breached_at": now, "owner": lead.owner, "sla_version": lead.sla_version},
        )
        if not created:
            return False
        if lead.owner is not None:
            notification_send(
                recipient=lead.owner,
                title=f"Response time missed: {lead}",
                body=f"First contact was due {lead.response_due_at:%b %d, %H:%M %Z}. "
                "Call or email now.",
                url=lead.get_absolute_url(),
            )
        notify_manager = lead.sla_version is None or lead.sla_version.notify_manager_on_breach
        managers = _managers_of(lead.owner) if notify_manager else []
        for manager in managers:
            notification_send(
                recipient=manager,
                title=f"SLA breach: {lead} (owner {lead.owner or 'unassigned'})",
                body=f"First contact was due {lead.response_due_at:%b %d, %H:%M %Z}.",
                url=lead.get_absolute_url(),
            )
        if managers:
            Breach.objects.filter(pk=breach.pk).update(manager_notified_at=now)
    return True


def _hours(value) -> str:
    """Business hours as people write them: 1, 1.5, 24 (not 1.00)."""
    return f"{Decimal(value).normalize():f}"


def _managers_of(user) -> list:
    from leads.models import TeamMembership

    if user is None:
        return []
    membership = TeamMembership.objects.select_related("team__manager").filter(user=user).first()
    manager = membership.team.manager if membership else None
    return [manager] if manager is not None and manager != user else []


def breach_escalate(*, breach_id: int, now) -> bool:
    """Reassign a breached lead nobody has contacted, after the SLA's delay,
    to another seller (routing, skipping the current owner), with a new
    response clock. When routing finds nobody (no other seller available,
    no default owner), the lead stays where it is and the owner's manager
    and the RevOps admins are told, so a person reassigns it. Idempotent: a
    conditional UPDATE claims the breach, and only the claim notifies."""
    from leads.models import Lead
    from sla import routing
    from sla.clocks import BusinessCalendar, business_due
    from sla.models import Breach

    with transaction.atomic():
        breach = Breach.objects.select_related("lead", "lead__account", "sla_version").get(
            pk=breach_id
        )
        lead, sla = breach.lead, breach.sla_version
        if lead.first_contact_at is not None or sla is None:
            return False
        new_owner = routing.owner_for(lead, exclude_user_ids={lead.owner_id} - {None})
        claimed = Breach.objects.filter(pk=breach.pk, reassigned_at__isnull=True).update(
            reassigned_at=now, reassigned_to=new_owner
        )
        if not claimed:
            return False
        if new_owner is None:
            _escalation_found_nobody(lead=lead, sla=sla)
            return True
        hours = (
            sla.response_hours_high_intent if lead.is_high_intent else sla.response_hours_standard
        )
        Lead.objects.filter(pk=lead.pk, first_contact_at__isnull=True).update(
            owner=new_owner,
            response_due_at=business_due(now, hours, BusinessCalendar.of(sla)),
            response_breached_at=None,
            updated_at=now,
        )
        notification_send(
            recipient=new_owner,
            title=f"Reassigned to you after an SLA breach: {lead}",
            body=f"{lead.owner or 'The previous owner'} did not make first contact in time.",
            url=lead.get_absolute_url(),
        )
    return True


def _escalation_found_nobody(*, lead, sla) -> None:
    """Tell the owner's manager and the RevOps admins (who own routing) that
    a breached lead could not be reassigned."""
    from django.contrib.auth import get_user_model

    from config import roles

    recipients = {user.pk: user for user in _managers_of(lead.owner)}
    for admin in (
        get_user_model()
        .objects.filter(groups__name=roles.REVOPS_ADMIN, is_active=True)
        .order_by("pk")
    ):
        recipients.setdefault(admin.pk, admin)
    owner = lead.owner or "nobody"
    delay = (
        f"{_hours(sla.reassign_after_hours)} more business hours"
        if sla.reassign_after_hours is not None
        else "the escalation delay"
    )
    notifications_send(
        (
            recipient,
            f"Nobody to reassign {lead} to",
            f"{lead} missed its first contact, and after {delay} it was due to go to another "
            "seller, but routing found no other seller available and no default owner to "
            f"take it. It stays with {owner}. "
            "Reassign it by hand, or bring a seller back from away or set a default owner "
            "in the routing settings.",
            lead.get_absolute_url(),
        )
        for recipient in recipients.values()
        if recipient != lead.owner
    )


def response_clock_sweep(*, now=None, limit: int = 5000) -> dict:
    """Find overdue clocks and breach each once; reassign breaches whose
    escalation delay has passed. Safe to run twice, or twice at once."""
    from leads.models import Lead, LeadStage
    from sla.clocks import BusinessCalendar, business_hours_between
    from sla.models import Breach

    now = now or timezone.now()
    overdue = list(
        Lead.objects.filter(
            first_contact_at__isnull=True,
            response_breached_at__isnull=True,
            response_due_at__lte=now,
            stage__in=(LeadStage.MQL, LeadStage.SAL),
        )
        .order_by("response_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    breached = sum(response_clock_breach(lead_id=pk, now=now) for pk in overdue)
    escalated = 0
    pending = Breach.objects.select_related("sla_version", "lead").filter(
        reassigned_at__isnull=True,
        lead__first_contact_at__isnull=True,
        lead__stage__in=(LeadStage.MQL, LeadStage.SAL),
        sla_version__reassign_after_hours__isnull=False,
    )[:limit]
    for breach in pending:
        calendar = BusinessCalendar.of(breach.sla_version)
        waited = business_hours_between(breach.breached_at, now, calendar)
        if waited >= float(breach.sla_version.reassign_after_hours):
            escalated += breach_escalate(breach_id=breach.pk, now=now)
    return {"breached": breached, "escalated": escalated}
