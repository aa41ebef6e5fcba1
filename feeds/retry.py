"""Exponential backoff with jitter for calls to flaky services.

Kept apart from the exchange client so the policy (which errors are worth
waiting for, how long) is one small, testable object. Delays are plain
numbers in seconds so tests run with a millisecond base and production with
a second or so; there is no hidden global clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["RetryPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait before retrying a transient failure.

    The n-th retry (n = 0, 1, ...) waits ``min(max_delay, base_delay * 2**n)``
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``, so many
    symbols that failed together do not hammer the exchange together again.
    """

    max_retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        raw = min(self.max_delay, self.base_delay * (2**attempt))
        r = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, raw * r)

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        retry_on: tuple[type[BaseException], ...],
        *,
        what: str = "request",
    ) -> T:
        """Await ``call()``; on an error in ``retry_on`` wait and try again.

        The last error propagates unchanged once ``max_retries`` retries are
        spent, so the caller decides how to word it.
        """
        attempt = 0
        while True:
            try:
                return await call()
            except retry_on as err:
                if attempt >= self.max_retries:
                    raise
                wait = self.delay(attempt)
                log.warning(
                    "%s failed (%s: %s); retry %d/%d in %.2fs",
                    what,
                    type(err).__name__,
                    str(err)[:200],
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                attempt += 1
                await asyncio.sleep(wait)
