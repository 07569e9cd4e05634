"""Shared pieces of the runner/orchestration tests: bundles on the emulator, a tiny retriever, runtimes."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelshift.bundle import Bundle, load_bundle
from modelshift.emulator.testing import EmulatorHandle
from modelshift.evaluation.dataset import Dataset, parse_dataset
from modelshift.orchestration import SINGLE_ATTEMPT, BundleRuntime
from modelshift.platforms import azure
from modelshift.platforms.azure.retry import RetryPolicy
from modelshift.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "bundles" / "support-chat"
SUB = "00000000-0000-0000-0000-000000000001"
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Hit:
    """A search hit: document path and chunk text."""

    document: str
    text: str


class ParagraphRetriever:
    """Paragraphs of a bundle's corpus ranked by shared words (a stand-in index, deterministic)."""

    def __init__(self, bundle: Bundle) -> None:
        self.paragraphs: list[Hit] = []
        for key in sorted(bundle.files):
            if key.startswith("retrieval.corpus/"):
                text = bundle.read_bytes(key).decode()
                name = key.removeprefix("retrieval.corpus/")
                self.paragraphs += [Hit(name, p) for p in text.split("\n\n") if len(p.split()) > 5]
        self.queries: list[str] = []

    def search(self, query: str, top_k: int) -> list[Hit]:
        """The ``top_k`` paragraphs sharing most words with ``query``."""
        self.queries.append(query)
        words = set(_WORD.findall(query.lower()))
        scored = sorted(
            self.paragraphs, key=lambda h: (-len(words & set(_WORD.findall(h.text.lower()))), h.document)
        )
        return scored[:top_k]


def settings_for(emu: EmulatorHandle, home: Path) -> Settings:
    """Settings pointing ARM and the data plane at the emulator."""
    return Settings(home=home, arm_url=emu.arm_url, api_key=emu.api_key, arm_token=emu.bearer_token)


def write_bundle(root: Path, version: str, **changes: Any) -> Bundle:
    """A copy of support-chat 1.0.0 as ``version`` with ``changes`` merged into its manifest sections."""
    shared = root / "shared"
    if not shared.exists():
        shutil.copytree(SUPPORT / "shared", shared)
    target = root / version
    shutil.copytree(SUPPORT / "1.0.0", target)
    manifest = yaml.safe_load((target / "bundle.yaml").read_text())
    manifest["version"] = version
    for section, values in changes.items():
        if isinstance(values, dict):
            manifest[section] = {**manifest[section], **values}
        else:
            manifest[section] = values
    (target / "bundle.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return load_bundle(target)


def small_dataset(n: int, path: Path | None = None) -> Dataset:
    """The first ``n`` items of support-chat's golden dataset."""
    lines = (SUPPORT / "shared" / "golden.jsonl").read_bytes().splitlines(keepends=True)[:n]
    return parse_dataset(b"".join(lines), path or SUPPORT / "shared" / "golden.jsonl")


def runtime_for(
    bundle: Bundle,
    emu: EmulatorHandle,
    client: httpx.AsyncClient,
    policy: RetryPolicy = SINGLE_ATTEMPT,
) -> BundleRuntime:
    """A runtime for a bundle in the emulator's contoso account (endpoint known, no ARM read)."""
    settings = settings_for(emu, Path("."))
    inference = azure.async_openai_client(
        emu.endpoint_for(bundle.manifest.model.account or ""), settings, client=client, policy=policy
    )
    return BundleRuntime(bundle, inference, ParagraphRetriever(bundle))
