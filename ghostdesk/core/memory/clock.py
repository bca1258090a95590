"""Time for memory: a callable returning an aware UTC datetime, replaceable in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ghostdesk.core.store.models import utcnow

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC)."""

system_clock: Clock = utcnow


class ManualClock:
    """A clock that moves only when told to: `clock.advance(days=61)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
