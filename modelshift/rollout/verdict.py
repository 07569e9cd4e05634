"""The verdict lattice of canary analysis: successful < inconclusive < error < failed, worst wins."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    """The outcome of one metric or one analysis; ordered by severity, not alphabetically.

    ``error`` means "could not measure" (no baseline traffic, NaN samples) and is kept apart from ``failed``
    ("measured worse"): both roll back, and the audit says which.
    """

    SUCCESSFUL = "successful"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    FAILED = "failed"

    @property
    def severity(self) -> int:
        """Position in the lattice: 0 successful, 1 inconclusive, 2 error, 3 failed."""
        return _SEVERITY[self]

    # str's comparisons would order the lattice alphabetically; these order by severity instead.
    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.severity < other.severity

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.severity <= other.severity

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.severity > other.severity

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.severity >= other.severity

    @classmethod
    def reduce(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """The worst of ``verdicts``; successful when there are none (nothing measured worse)."""
        return max(verdicts, key=lambda v: v.severity, default=cls.SUCCESSFUL)


_SEVERITY: dict[Verdict, int] = {
    Verdict.SUCCESSFUL: 0,
    Verdict.INCONCLUSIVE: 1,
    Verdict.ERROR: 2,
    Verdict.FAILED: 3,
}
