"""Reporting's models, by area: win/loss retrospectives and their action
items (`winloss`), and shared goals, rollups and attribution results (`metrics`)."""

from reporting.models.metrics import *  # noqa: F403
from reporting.models.winloss import *  # noqa: F403
