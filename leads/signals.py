"""Signals other apps connect to. Sent by services, after commit; receivers
must not assume they run inside the sender's transaction."""

from django.dispatch import Signal

# Sent once per committed batch of new touchpoints, with `lead_ids`: a frozenset
# of the ids of the leads that got at least one. The sla app connects here to
# re-score those leads in a task.
touchpoints_recorded = Signal()
