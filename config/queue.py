"""Sending tasks without letting a broker outage lose work or fail a request.

Tasks are sent after the transaction that made their work commits. If the
broker is down then, the send is logged and given up: nothing a user saved
depends on that message, because a beat-driven sweep finds committed work
whose task never ran (unscored touchpoints, unsent notification emails,
queued imports, stalled re-score lanes) and sends it again. Every task is
idempotent, so a sweep that sends work twice is harmless.
"""

import logging
from functools import partial

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(task, *args, **kwargs) -> bool:
    """Send a task now; False (and a logged warning) if the broker refused."""
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception:  # kombu and redis raise many kinds of connection errors
        logger.warning(
            "Could not enqueue %s%r; a sweep will retry it.", task.name, args, exc_info=True
        )
        return False
    return True


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Send a task once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(enqueue, task, *args, **kwargs))
