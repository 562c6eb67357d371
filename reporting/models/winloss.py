"""Win/loss retrospectives, their decision drivers and action items."""

__all__: list[str] = []
