"""The stuck-running rule: what to do when a key is triggered while still running.

A try can be handed to an executor again while the executor still lists it as
running (its earlier finish has not been read yet, or it really is stuck). We
neither start it twice nor wait forever: the key is re-checked on each heartbeat
until a minimum window has passed, then allowed one last look, then dropped
with an audit event. Same rule as Airflow's RunningRetryAttemptType.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunningRetryAttempt:
    """Counts the re-checks of one key that was queued while still running."""

    MIN_SECONDS = 10.0

    clock: Callable[[], float] = time.monotonic
    total_tries: int = 0
    tries_after_min: int = 0
    first_attempt_time: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.first_attempt_time < 0:
            self.first_attempt_time = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.first_attempt_time

    def can_try_again(self) -> bool:
        """True while the key may be re-checked on a later heartbeat."""
        if self.tries_after_min > 0:
            return False
        self.total_tries += 1
        if self.elapsed > self.MIN_SECONDS:
            self.tries_after_min += 1
        return True
