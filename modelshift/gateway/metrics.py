"""The ``request_metrics`` table: one row per gateway request, and the per-digest window query.

The table is created by the Alembic migration ``0005_request_metrics``; the row class registers on the
store's declarative ``Base`` so both describe the same columns. Rows are written in batches by
:class:`modelshift.gateway.writer.MetricsWriter`; :func:`observe` reads a window back, per bundle digest,
in the shape the rollout analysis needs (counts, errors, latencies, tokens, feedback).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, delete, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

# The store package must initialise before anything that imports modelshift.audit (import cycle otherwise).
from modelshift.store.store import Store

# isort: split
from modelshift.errors import ConfigError
from modelshift.store.engine import run_read, run_write
from modelshift.store.models import DIGEST_LEN, Base

#: feedback scores are normalised to this range; thumbs up is 1.0 and thumbs down 0.0
FEEDBACK_MIN, FEEDBACK_MAX = 0.0, 1.0


class RequestMetricRow(Base):
    """One request the gateway served (or failed), with the bundle that served it."""

    __tablename__ = "request_metrics"
    __table_args__ = (Index("ix_request_metrics_app_started_at", "app", "started_at"),)

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    app: Mapped[str] = mapped_column(String(200))
    bundle_digest: Mapped[str | None] = mapped_column(String(DIGEST_LEN))
    started_at: Mapped[datetime]
    latency_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[int] = mapped_column(Integer)
    error_class: Mapped[str | None] = mapped_column(String(100))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    user_key_hash: Mapped[str | None] = mapped_column(String(32))
    feedback: Mapped[float | None] = mapped_column(Float)
    feedback_at: Mapped[datetime | None]


@dataclass(frozen=True)
class RequestRecord:
    """What the gateway records about one request (feedback comes later, see :func:`set_feedback`)."""

    request_id: str
    app: str
    bundle_digest: str | None
    started_at: datetime
    latency_ms: float
    status: int
    error_class: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    user_key_hash: str | None = None

    def as_row(self) -> dict[str, object]:
        """Column values for an INSERT."""
        return {
            "request_id": self.request_id,
            "app": self.app,
            "bundle_digest": self.bundle_digest,
            "started_at": self.started_at,
            "latency_ms": float(self.latency_ms),
            "status": int(self.status),
            "error_class": self.error_class,
            "prompt_tokens": int(self.prompt_tokens),
            "completion_tokens": int(self.completion_tokens),
            "user_key_hash": self.user_key_hash,
            "feedback": None,
            "feedback_at": None,
        }


def insert_records(store: Store, records: Sequence[RequestRecord]) -> None:
    """Insert ``records`` in one transaction (one executemany)."""
    if not records:
        return
    rows = [r.as_row() for r in records]

    def work(session: Session) -> None:
        session.execute(insert(RequestMetricRow), rows)

    run_write(store.engine, work, url=store.engine.url)


def feedback_value(score: float | None, thumbs: str | bool | None) -> float:
    """A feedback score in 0..1 from ``score`` (0..1) or ``thumbs`` ("up"/"down" or a bool)."""
    if (score is None) == (thumbs is None):
        raise ConfigError("feedback needs exactly one of 'score' (0..1) or 'thumbs' ('up' or 'down')")
    if thumbs is not None:
        if isinstance(thumbs, bool):
            return FEEDBACK_MAX if thumbs else FEEDBACK_MIN
        if thumbs in ("up", "down"):
            return FEEDBACK_MAX if thumbs == "up" else FEEDBACK_MIN
        raise ConfigError(f"feedback 'thumbs' is {thumbs!r}; send 'up' or 'down'")
    value = float(score)  # type: ignore[arg-type]  # None ruled out above
    if not FEEDBACK_MIN <= value <= FEEDBACK_MAX or value != value:
        raise ConfigError(f"feedback 'score' is {score!r}; send a number between 0 and 1")
    return value


def set_feedback(store: Store, app: str, request_id: str, value: float, at: datetime) -> bool:
    """Attach feedback to a recorded request of ``app``; False when no such request was recorded."""

    def work(session: Session) -> bool:
        result = session.execute(
            update(RequestMetricRow)
            .where(RequestMetricRow.request_id == request_id, RequestMetricRow.app == app)
            .values(feedback=value, feedback_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE

    return run_write(store.engine, work, url=store.engine.url)


@dataclass
class DigestWindow:
    """One bundle's requests in a window, ready to become a rollout ``Observation``."""

    digest: str
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
    feedback: list[float] = field(default_factory=list)
    #: error class -> count (ThrottledError, ModelRetiredError, ...)
    error_classes: dict[str, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """Errors / requests (0.0 with no requests)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def tokens_per_request(self) -> list[int]:
        """Prompt plus completion tokens of each successful request."""
        return [p + c for p, c in zip(self.prompt_tokens, self.completion_tokens, strict=True)]


def _fold(rows: Iterable[RequestMetricRow]) -> dict[str, DigestWindow]:
    windows: dict[str, DigestWindow] = {}
    for row in rows:
        if row.bundle_digest is None:  # failed before a bundle was chosen (unknown app, no production)
            continue
        window = windows.setdefault(row.bundle_digest, DigestWindow(row.bundle_digest))
        window.requests += 1
        if row.feedback is not None:
            window.feedback.append(row.feedback)
        if row.status >= 400 or row.error_class:
            window.errors += 1
            name = row.error_class or f"HTTP {row.status}"
            window.error_classes[name] = window.error_classes.get(name, 0) + 1
            continue
        # latency and tokens of successful requests only: a fast failure is not a fast answer
        window.latencies_ms.append(row.latency_ms)
        window.prompt_tokens.append(row.prompt_tokens)
        window.completion_tokens.append(row.completion_tokens)
    return windows


def observe(store: Store, app: str, since: datetime, until: datetime) -> dict[str, DigestWindow]:
    """Per bundle digest, the requests of ``app`` that started in ``[since, until)``."""
    if until < since:
        raise ConfigError(f"observation window of app {app!r} ends ({until}) before it starts ({since})")
    query = (
        select(RequestMetricRow)
        .where(
            RequestMetricRow.app == app,
            RequestMetricRow.started_at >= since,
            RequestMetricRow.started_at < until,
        )
        .order_by(RequestMetricRow.started_at, RequestMetricRow.request_id)
    )
    return run_read(store.engine, lambda s: _fold(s.scalars(query)), url=store.engine.url)


def prune(store: Store, before: datetime, *, app: str | None = None) -> int:
    """Delete request records that started before ``before`` (of one app, if given); how many went."""

    def work(session: Session) -> int:
        query = delete(RequestMetricRow).where(RequestMetricRow.started_at < before)
        if app is not None:
            query = query.where(RequestMetricRow.app == app)
        return int(session.execute(query).rowcount)  # type: ignore[attr-defined]  # CursorResult

    return run_write(store.engine, work, url=store.engine.url)


def get_record(store: Store, request_id: str) -> RequestMetricRow | None:
    """The recorded row of one request (detached; for tests and operators)."""
    return run_read(store.engine, lambda s: s.get(RequestMetricRow, request_id), url=store.engine.url)
