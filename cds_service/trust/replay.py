"""The jti values seen, per process (Redis shares them across processes: shared.py)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass
class ReplayCache:
    """jti values seen, kept until their token expires. Bounded: when full, the entries closest to
    expiry go first."""

    size: int
    _seen: dict[tuple[str, str], float] = field(default_factory=dict)
    _expiries: list[tuple[float, tuple[str, str]]] = field(default_factory=list)

    async def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        while self._expiries and (self._expiries[0][0] < now or len(self._seen) >= self.size):
            expiry, key = heapq.heappop(self._expiries)
            if self._seen.get(key) == expiry:
                del self._seen[key]
        key = (iss, jti)
        if key in self._seen:
            return False
        self._seen[key] = exp
        heapq.heappush(self._expiries, (exp, key))
        return True
