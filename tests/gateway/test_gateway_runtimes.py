"""The runtime cache: one build per digest from the store's content, remembered failures, cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from modelshift.bundle import Bundle
from modelshift.errors import ConfigError, NotFoundError
from modelshift.gateway.runtimes import RuntimeCache
from modelshift.orchestration import BundleRuntime
from modelshift.platforms.base import ChatResult, EmbeddingResult
from modelshift.store import Store
from tests.gateway.gateway_helpers import adopt, write_bundle


class NoCalls:
    """An inference client these tests never call (they only build runtimes)."""

    async def chat(self, deployment: str, messages: Sequence[Mapping[str, Any]], **params: Any) -> ChatResult:
        raise AssertionError("not called")

    async def embed(self, deployment: str, inputs: Sequence[str]) -> EmbeddingResult:
        raise AssertionError("not called")


def test_builds_once_per_digest_from_store_content_and_cleans_up(store: Store, tmp_path: Path) -> None:
    original = write_bundle(tmp_path / "src", "shop", "1.0.0", "red", "support-chat-4o")
    adopt(store, original)
    built: list[Bundle] = []

    def factory(bundle: Bundle) -> BundleRuntime:
        built.append(bundle)
        return BundleRuntime(bundle, NoCalls(), None)

    cache = RuntimeCache(store, factory, tmp_path / "work")

    async def go() -> list[BundleRuntime]:
        return list(await asyncio.gather(*(cache.get(original.digest) for _ in range(5))))

    runtimes = asyncio.run(go())
    assert all(r is runtimes[0] for r in runtimes) and cache.builds == 1
    served = built[0]
    # the served bundle is the stored content, materialized outside the checkout, with the same digest
    assert served.digest == original.digest and served.root != original.root
    assert "The gateway flag is red." in runtimes[0].render("q", [])[-1]["content"]
    assert served.root.exists()
    cache.close()
    assert not served.root.exists()


def test_failures_are_remembered_then_retried(store: Store, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "src", "shop", "1.0.0", "red", "support-chat-4o")
    adopt(store, bundle)
    calls = 0

    def broken(b: Bundle) -> BundleRuntime:
        nonlocal calls
        calls += 1
        raise ConfigError(f"deployment of {b.app} not reachable; fix model.endpoint")

    cache = RuntimeCache(store, broken, tmp_path / "work", retry_after_s=60)

    async def attempt() -> None:
        await cache.get(bundle.digest)

    for _ in range(3):
        with pytest.raises(ConfigError, match=r"fix model\.endpoint"):
            asyncio.run(attempt())
    assert calls == 1
    cache.retry_after_s = 0
    with pytest.raises(ConfigError):
        asyncio.run(attempt())
    assert calls == 2
    assert not any((tmp_path / "work").rglob("bundle.yaml"))  # failed builds leave nothing behind
    with pytest.raises(NotFoundError):
        asyncio.run(RuntimeCache(store, broken, tmp_path / "w2").get("sha256:unknown"))
