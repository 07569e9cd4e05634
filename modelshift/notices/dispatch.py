"""Handing an accepted notice on: a Prefect event (a deployment trigger starts the scan) or a local scan.

Prefect facts used here (notes/prefect-3.md §3, §9): ``POST {PREFECT_API_URL}/events`` takes a JSON *list*
of events and answers 204; ``id``, ``occurred``, ``event`` and ``resource["prefect.resource.id"]`` are
required; the trigger service drops an event id it has already seen, so a deterministic id (uuid5 of the
notice key) makes a re-sent notice start nothing new on the Prefect side too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import httpx

from modelshift.clock import Clock, utcnow
from modelshift.errors import AuthError, BadRequestError
from modelshift.notices.model import DispatchError, Notice

log = logging.getLogger(__name__)

#: the event name the retirement-scan deployment trigger expects
NOTICE_EVENT = "modelshift.azure.notice.received"


class Dispatcher(Protocol):
    """Starts whatever should happen for an accepted notice; raises ``DispatchError`` when it could not."""

    def dispatch(self, notice: Notice) -> None:
        """Hand the notice on (return once it is safely handed over, not when the scan finishes)."""
        ...


def notice_event(notice: Notice, *, occurred: str) -> dict[str, Any]:
    """The Prefect event of a notice: deterministic id, notice as resource, a related resource per model."""
    resource: dict[str, str] = {
        "prefect.resource.id": f"modelshift.notice.{notice.tracking_id}",
        "prefect.resource.name": notice.title[:200] or str(notice.tracking_id),
        "modelshift.notice.stage": notice.stage or "",
        "modelshift.notice.incident-type": notice.incident_type or "",
    }
    related: list[dict[str, str]] = []
    seen: set[str] = set()
    for model in notice.models:
        resource_id = f"modelshift.model.{model.ref}"
        if resource_id in seen:
            continue
        seen.add(resource_id)
        related.append(
            {
                "prefect.resource.id": resource_id,
                "prefect.resource.role": "replacement-model" if model.replacement else "model",
                "prefect.resource.name": model.name,
            }
        )
    return {
        "id": notice.notice_id,
        "occurred": occurred,
        "event": NOTICE_EVENT,
        "resource": resource,
        "related": related,
        "payload": notice.summary(),
    }


class PrefectEventDispatcher:
    """POSTs the notice event to a Prefect server's events API (OSS server or Cloud workspace URL)."""

    def __init__(
        self, api_url: str, client: httpx.Client, auth: httpx.Auth | None = None, *, clock: Clock = utcnow
    ) -> None:
        self._url = api_url.rstrip("/") + "/events"
        self._client = client
        self._auth = auth
        self._clock = clock

    def dispatch(self, notice: Notice) -> None:
        """Post one event; 2xx is success, anything else a typed error naming the URL and the fix."""
        event = notice_event(notice, occurred=self._clock().isoformat())
        try:
            response = self._client.post(self._url, json=[event], auth=self._auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise DispatchError(
                f"cannot reach the Prefect events API at {self._url} ({type(exc).__name__}: {exc}); check "
                "PREFECT_API_URL and that `prefect server start` is running",
                request=self._url,
            ) from None
        if response.is_success:
            return
        detail = response.text[:300]
        if response.status_code in (401, 403):
            raise AuthError(
                f"the Prefect events API at {self._url} refused our credentials ({response.status_code}); "
                "set PREFECT_API_AUTH_STRING (OSS basic auth) or PREFECT_API_KEY (Cloud)",
                status_code=response.status_code,
                request=self._url,
            )
        if 400 <= response.status_code < 500 and response.status_code not in (404, 408, 429):
            raise BadRequestError(
                f"the Prefect events API at {self._url} rejected notice event {notice.notice_id} "
                f"({response.status_code}: {detail}); this is a modelshift bug, please report it",
                status_code=response.status_code,
                request=self._url,
            )
        raise DispatchError(
            f"the Prefect events API at {self._url} answered {response.status_code} ({detail}); "
            "Azure will resend the notice and it will be dispatched again",
            status_code=response.status_code,
            request=self._url,
        )


ScanCallback = Callable[[Notice], None]


def log_scan_request(notice: Notice) -> None:
    """The default in-process callback until the retirement scan plugs in: log what would be scanned."""
    models = ", ".join(m.ref for m in notice.models if not m.replacement) or "every production bundle"
    log.info(
        "retirement scan requested by Azure notice %s (%s): %s", notice.tracking_id, notice.stage, models
    )


class InProcessDispatcher:
    """Runs a callback (the retirement scan, scoped to the notice) on a background thread of this process.

    For a receiver with no Prefect server. One worker thread: scans are queued, not run in parallel, so a
    burst of notices cannot start many scans against the same store at once.
    """

    def __init__(self, callback: ScanCallback = log_scan_request, *, max_workers: int = 1) -> None:
        self._callback = callback
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="modelshift-notice")
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()

    def dispatch(self, notice: Notice) -> None:
        """Queue the callback; a failure inside it is logged (the notice was already accepted)."""
        try:
            future = self._executor.submit(self._run, notice)
        except RuntimeError as exc:  # the executor was shut down
            raise DispatchError(
                f"the in-process scan runner is stopped ({exc}); restart the receiver"
            ) from None
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _run(self, notice: Notice) -> None:
        try:
            self._callback(notice)
        except Exception:
            log.exception("in-process retirement scan for notice %s failed", notice.tracking_id)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued callback has finished; True if none is left."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        """Finish queued callbacks and stop the worker thread."""
        self._executor.shutdown(wait=True)
