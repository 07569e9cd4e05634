"""Per-deployment rate limits the way Azure OpenAI enforces them, on real monotonic time.

TPM = capacity x 1000; RPM = 6 per 1000 TPM. Requests are checked over 10-second windows (RPM / 6 per
10 s) and tokens over 60-second windows. A request's token cost is estimated up front from its prompt
tokens plus ``max_tokens``, as Azure does, so a request is admitted or refused before it runs.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

REQUEST_WINDOW_S = 10.0
TOKEN_WINDOW_S = 60.0


@dataclass(frozen=True)
class Decision:
    """Admit or refuse, with what is left and (if refused) how long to wait."""

    allowed: bool
    remaining_requests: int
    remaining_tokens: int
    retry_after_s: float


def limits_for_capacity(capacity: int) -> tuple[int, int]:
    """(RPM, TPM) of a deployment with ``capacity`` units (1 unit = 1000 TPM = 6 RPM)."""
    tpm = capacity * 1000
    return tpm // 1000 * 6, tpm


class SlidingWindowLimiter:
    """A thread-safe request + token limiter for one deployment."""

    def __init__(self, capacity: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        rpm, tpm = limits_for_capacity(capacity)
        self.requests_per_window = max(1, rpm // 6)
        self.tokens_per_window = tpm
        self._monotonic = monotonic
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._token_sum = 0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._requests and now - self._requests[0] >= REQUEST_WINDOW_S:
            self._requests.popleft()
        while self._tokens and now - self._tokens[0][0] >= TOKEN_WINDOW_S:
            self._token_sum -= self._tokens.popleft()[1]

    def acquire(self, tokens: int) -> Decision:
        """Count one request costing ``tokens`` if both windows have room; otherwise refuse it."""
        with self._lock:
            now = self._monotonic()
            self._expire(now)
            wait = 0.0
            if len(self._requests) >= self.requests_per_window:
                wait = max(wait, REQUEST_WINDOW_S - (now - self._requests[0]))
            if self._token_sum + tokens > self.tokens_per_window:
                if tokens > self.tokens_per_window:
                    wait = max(wait, TOKEN_WINDOW_S)
                else:
                    # wait until enough old tokens have left the window
                    needed = self._token_sum + tokens - self.tokens_per_window
                    freed = 0
                    for stamp, count in self._tokens:
                        freed += count
                        if freed >= needed:
                            wait = max(wait, TOKEN_WINDOW_S - (now - stamp))
                            break
            if wait > 0:
                return Decision(
                    False,
                    max(0, self.requests_per_window - len(self._requests)),
                    max(0, self.tokens_per_window - self._token_sum),
                    math.ceil(wait * 1000) / 1000,
                )
            self._requests.append(now)
            self._tokens.append((now, tokens))
            self._token_sum += tokens
            return Decision(
                True,
                self.requests_per_window - len(self._requests),
                self.tokens_per_window - self._token_sum,
                0.0,
            )
