"""Bundle runtimes built lazily per digest from the store's content, and cached.

The gateway never reads a bundle checkout: the first request routed to a digest fetches that bundle's
stored content (manifest, file hashes, blobs), materializes it into a private directory (checking the
digest), and builds ONE :class:`~modelshift.orchestration.BundleRuntime` for it through the runtime
factory. Every later request to that digest reuses it. A runtime holds exactly one bundle's pieces, so a
request is served entirely by the bundle it was routed to.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from modelshift.bundle import Bundle
from modelshift.bundle.content import BundleContent, bundle_from_content
from modelshift.clock import Clock, utcnow
from modelshift.errors import ModelshiftError
from modelshift.orchestration import (
    BundleRuntime,
    EndpointDirectory,
    Retriever,
    async_inference,
    open_runtime,
)
from modelshift.settings import Settings
from modelshift.store import Store

#: builds the runtime of one materialized bundle (the default resolves its endpoint and opens its index)
RuntimeFactory = Callable[[Bundle], BundleRuntime]
#: opens a bundle's own index generation (None for bundles without retrieval)
RetrieverFor = Callable[[Bundle], Retriever | None]


def default_factory(
    settings: Settings,
    client: httpx.AsyncClient,
    directory: EndpointDirectory,
    *,
    clock: Clock = utcnow,
    retriever_for: RetrieverFor | None = None,
) -> RuntimeFactory:
    """The factory ``modelshift gateway serve`` uses: the orchestrator's own :func:`open_runtime` (the
    bundle's index generation under MODELSHIFT_HOME, its endpoint, one attempt per model call).

    One attempt: a 429 goes back to the caller with its retry-after, so the application's own SDK retry
    policy decides, as it would against Azure directly. ``retriever_for`` replaces the index opener."""

    def build(bundle: Bundle) -> BundleRuntime:
        if retriever_for is None:
            return open_runtime(bundle, settings, directory, client=client, clock=clock)[0]
        target = directory.resolve(bundle)
        return BundleRuntime(bundle, async_inference(target, settings, client=client), retriever_for(bundle))

    return build


class RuntimeCache:
    """digest -> BundleRuntime, built on first use from the store; one build per digest at a time.

    A failed build (a bundle whose deployment or index cannot be opened) is remembered for
    ``retry_after_s`` so a burst of requests does not rebuild it on every call; the error is re-raised.
    Materialized bundles live in one private directory per cache, removed by :meth:`close`."""

    def __init__(
        self, store: Store, factory: RuntimeFactory, workdir: Path, *, retry_after_s: float = 10.0
    ) -> None:
        self.store = store
        self.factory = factory
        self.workdir = workdir
        self.retry_after_s = retry_after_s
        self._runtimes: dict[str, BundleRuntime] = {}
        self._failures: dict[str, tuple[float, ModelshiftError]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._root: Path | None = None
        #: build attempts (tests assert the cache works)
        self.builds = 0

    async def get(self, digest: str) -> BundleRuntime:
        """The runtime of ``digest``, built from the store's content on first use."""
        runtime = self._runtimes.get(digest)
        if runtime is not None:
            return runtime
        async with self._locks.setdefault(digest, asyncio.Lock()):
            runtime = self._runtimes.get(digest)
            if runtime is None:
                failed = self._failures.get(digest)
                if failed is not None and time.monotonic() - failed[0] < self.retry_after_s:
                    raise failed[1]
                try:
                    runtime = await asyncio.to_thread(self._build, digest)
                except ModelshiftError as exc:
                    self._failures[digest] = (time.monotonic(), exc)
                    raise
                self._failures.pop(digest, None)
                self._runtimes[digest] = runtime
        return runtime

    def _build(self, digest: str) -> BundleRuntime:
        self.builds += 1
        registered = self.store.get_bundle_by_digest(digest)
        content = BundleContent(manifest=registered.manifest, files=registered.files)
        if self._root is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._root = Path(tempfile.mkdtemp(prefix="runtimes-", dir=self.workdir))
        dest = Path(tempfile.mkdtemp(prefix=f"{registered.app}-{registered.version}-", dir=self._root))
        try:
            bundle = bundle_from_content(content, dest, digest=digest, blobs=self.store.bundle_blobs(digest))
            return self.factory(bundle)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise

    def close(self) -> None:
        """Forget every runtime and remove the materialized bundles."""
        self._runtimes.clear()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
