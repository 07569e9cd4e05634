"""The bundle orchestrator on the real emulator: each bundle uses its own index, prompt and deployment."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runner_helpers import SUB, SUPPORT, ParagraphRetriever, runtime_for, settings_for, write_bundle

from modelshift.bundle import load_bundle
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import ConfigError
from modelshift.orchestration import (
    BundleRuntime,
    EndpointDirectory,
    Passage,
    async_inference,
    format_context,
    generation_params,
    open_index,
    open_runtime,
)
from modelshift.platforms import azure


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(latency_scale=0.0) as handle:
        yield handle


def test_two_bundles_never_mix(emu: EmulatorHandle, tmp_path: Path) -> None:
    """Same question, two bundles: each request carries its own prompt, corpus and deployment."""
    hr_corpus = SUPPORT.parent / "hr-handbook" / "shared" / "corpus"
    a = load_bundle(SUPPORT / "1.0.0")
    # b: its own corpus (the HR handbook), system prompt, deployment, model and parameters
    shutil.copytree(SUPPORT / "shared", tmp_path / "shared")
    shutil.copytree(hr_corpus, tmp_path / "shared" / "hr-corpus")
    shutil.copy(hr_corpus.parent / "golden.jsonl", tmp_path / "shared" / "hr-golden.jsonl")
    write_bundle(
        tmp_path,
        "2.0.0",
        model={"deployment": "faq-4o-mini", "name": "gpt-4o-mini", "version": "2024-07-18"},
        parameters={"temperature": 0.5, "max_tokens": 123, "seed": 11},
        retrieval={"corpus": "../shared/hr-corpus", "top_k": 2},
        evaluation={"dataset": "../shared/hr-golden.jsonl"},
    )
    (tmp_path / "2.0.0" / "prompts" / "system.md").write_text("You are the HR bot. Cite the file.\n")
    b = load_bundle(tmp_path / "2.0.0")
    assert a.digest != b.digest

    sent: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        sent.append({"url": str(request.url), "body": json.loads(request.content)})

    question = "How many days of annual leave do I get?"

    async def go() -> tuple[Any, Any]:
        async with httpx.AsyncClient(timeout=30, event_hooks={"request": [record]}) as client:
            ra, rb = runtime_for(a, emu, client), runtime_for(b, emu, client)
            return await asyncio.gather(ra.answer(question), rb.answer(question))

    ans_a, ans_b = asyncio.run(go())
    by_deployment = {("faq-4o-mini" in s["url"]): s for s in sent}
    req_a, req_b = by_deployment[False], by_deployment[True]
    assert "/deployments/support-chat-4o/" in req_a["url"]
    assert req_a["body"]["messages"][0]["content"] == a.prompt_for().system
    assert req_b["body"]["messages"][0]["content"] == "You are the HR bot. Cite the file.\n"
    assert (req_a["body"]["max_tokens"], req_a["body"]["seed"]) == (400, 7)
    assert (req_b["body"]["max_tokens"], req_b["body"]["temperature"], req_b["body"]["seed"]) == (
        123,
        0.5,
        11,
    )

    support_docs = {k.removeprefix("retrieval.corpus/") for k in a.files if k.startswith("retrieval.corpus/")}
    hr_docs = {k.removeprefix("retrieval.corpus/") for k in b.files if k.startswith("retrieval.corpus/")}
    assert len(ans_a.contexts) == 4 and {p.document for p in ans_a.contexts} <= support_docs
    assert len(ans_b.contexts) == 2 and {p.document for p in ans_b.contexts} <= hr_docs
    for p in ans_b.contexts:
        assert f"[{p.source}]" in req_b["body"]["messages"][-1]["content"]
        assert f"[{p.source}]" not in req_a["body"]["messages"][-1]["content"]
    assert (ans_a.app, ans_a.version, ans_a.digest, ans_a.deployment, ans_a.model) == (
        "support-chat",
        "1.0.0",
        a.digest,
        "support-chat-4o",
        "gpt-4o@2024-05-13",
    )
    assert (ans_b.version, ans_b.digest, ans_b.deployment, ans_b.model) == (
        "2.0.0",
        b.digest,
        "faq-4o-mini",
        "gpt-4o-mini@2024-07-18",
    )
    assert ans_a.usage.prompt_tokens > 0 and ans_a.content


def test_prompt_rendering_and_conversation(emu: EmulatorHandle) -> None:
    bundle = load_bundle(SUPPORT / "1.0.0")

    async def go() -> Any:
        async with httpx.AsyncClient(timeout=30) as client:
            runtime = runtime_for(bundle, emu, client)
            prepared = runtime.prepare("How do I restore files?", [{"role": "user", "content": "hi"}])
            assert [m["role"] for m in prepared.messages] == ["system", "user", "user"]
            user = prepared.messages[-1]["content"]
            assert user.rstrip().endswith("Question: How do I restore files?")
            assert format_context(prepared.contexts) in user
            return await runtime.answer("How do I restore files?")

    answer = asyncio.run(go())
    assert answer.messages[-1]["content"].startswith("Documentation excerpts:")


def test_format_context_uses_the_file_name() -> None:
    passages = [Passage("guides/restoring-files.md", "  Step one.\n"), Passage("plans.md", "Plans.")]
    assert format_context(passages) == "[restoring-files.md]\nStep one.\n\n[plans.md]\nPlans."
    assert format_context([]) == ""


def test_generation_params_leave_out_unset_fields(tmp_path: Path) -> None:
    plain = load_bundle(SUPPORT / "1.0.0")
    assert generation_params(plain) == {"temperature": 0.0, "max_tokens": 400, "seed": 7}
    full = write_bundle(
        tmp_path,
        "9.0.0",
        parameters={
            "temperature": 1.0,
            "max_tokens": 1,
            "top_p": 0.5,
            "stop": ["END"],
            "presence_penalty": -2.0,
            "frequency_penalty": 2.0,
        },
    )
    assert generation_params(full) == {
        "temperature": 1.0,
        "max_tokens": 1,
        "seed": 7,
        "top_p": 0.5,
        "stop": ["END"],
        "presence_penalty": -2.0,
        "frequency_penalty": 2.0,
    }


def test_family_override_prompt_is_used(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, "4.1.0", model={"name": "gpt-4.1", "version": "2025-04-14"})
    runtime = BundleRuntime(bundle, azure_stub(), ParagraphRetriever(bundle))
    assert runtime.prompts.family == "gpt-4.1"
    assert runtime.prepare("q?").messages[0]["content"] == bundle.texts["prompts.overrides.gpt-4.1.system"]


def azure_stub() -> Any:
    """An inference client that is never called (rendering only)."""
    return object()


def test_retrieval_without_an_index_is_refused() -> None:
    bundle = load_bundle(SUPPORT / "1.0.0")
    with pytest.raises(ConfigError, match="no index was given"):
        BundleRuntime(bundle, azure_stub(), None)


def test_bundle_without_retrieval_sends_no_context(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, "0.1.0", retrieval=None)
    runtime = BundleRuntime(bundle, azure_stub(), None)
    prepared = runtime.prepare("What is Contoso Backup?")
    assert prepared.contexts == ()
    assert prepared.messages[-1]["content"].rstrip().endswith("Question: What is Contoso Backup?")


@pytest.mark.parametrize("question", ["", "   \n"])
def test_empty_question_is_refused(question: str) -> None:
    bundle = load_bundle(SUPPORT / "1.0.0")
    runtime = BundleRuntime(bundle, azure_stub(), ParagraphRetriever(bundle))
    with pytest.raises(ConfigError, match="empty question"):
        runtime.prepare(question)


# ------------------------------------------------------------------------------ endpoint directory


def test_directory_reads_arm_once_per_account_and_deployment(emu: EmulatorHandle, tmp_path: Path) -> None:
    a = load_bundle(SUPPORT / "1.0.0")
    b = write_bundle(tmp_path, "3.0.0", model={"deployment": "faq-4o-mini", "name": "gpt-4o-mini"})
    settings = settings_for(emu, tmp_path)
    with httpx.Client(timeout=30) as client:
        directory = EndpointDirectory(azure.arm_client(settings, client=client))
        ta = directory.resolve(a)
        assert directory.resolve(a) == ta
        tb = directory.resolve(b)
    assert ta.endpoint == emu.endpoint_for("contoso-aoai-eus")
    assert tb.endpoint == ta.endpoint
    assert ta.limits is not None and (ta.limits.tpm, ta.limits.rpm) == (50_000, 300)
    assert tb.limits is not None and tb.limits.tpm == 30_000
    assert directory.arm_reads == 3  # one account list, two deployments

    async def go() -> str:
        async with httpx.AsyncClient(timeout=30) as ac:
            inference = async_inference(ta, settings, client=ac)
            runtime = BundleRuntime(a, inference, ParagraphRetriever(a))
            return (await runtime.answer("Is there a free trial?")).content

    assert asyncio.run(go())


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"account": "no-such-account"}, "model.account 'no-such-account' was not found"),
        ({"deployment": "no-such-deployment"}, "deployment 'no-such-deployment' does not exist"),
    ],
)
def test_directory_errors_name_the_field(
    emu: EmulatorHandle, tmp_path: Path, model: dict[str, str], message: str
) -> None:
    bundle = write_bundle(tmp_path, "5.0.0", model=model)
    with httpx.Client(timeout=30) as client:
        directory = EndpointDirectory(azure.arm_client(settings_for(emu, tmp_path), client=client))
        with pytest.raises(ConfigError, match=message):
            directory.resolve(bundle)


def test_directory_without_arm(tmp_path: Path) -> None:
    bundle = load_bundle(SUPPORT / "1.0.0")
    with pytest.raises(ConfigError, match="needs ARM"):
        EndpointDirectory(None).resolve(bundle)
    pinned = write_bundle(tmp_path, "6.0.0", model={"endpoint": "https://contoso.openai.azure.com/"})
    target = EndpointDirectory(None).resolve(pinned)
    assert target.endpoint == "https://contoso.openai.azure.com/"
    assert target.limits is not None and target.limits.tpm == 50_000  # from the manifest's sku


def test_openai_compatible_target(tmp_path: Path) -> None:
    model: dict[str, Any] = {
        "platform": "openai-compatible",
        "endpoint": "http://127.0.0.1:9/v1",
        "deployment": None,
        "name": "llama3",
        "version": "8b",
        "format": "OpenAI",
    }
    bundle = write_bundle(tmp_path, "7.0.0", model=model)
    target = EndpointDirectory(None).resolve(bundle)
    assert (target.platform, target.endpoint, target.deployment, target.limits) == (
        "openai-compatible",
        "http://127.0.0.1:9/v1",
        "llama3",
        None,
    )


def test_azure_ml_is_not_supported_yet(tmp_path: Path) -> None:
    model = {
        "platform": "azure-ml",
        "subscription": SUB,
        "resource_group": "rg",
        "account": "ws",
        "endpoint": "ep",
        "deployment": "blue",
        "name": "phi-3",
        "version": "1",
        "format": "OpenAI",
    }
    bundle = write_bundle(tmp_path, "8.0.0", model=model)
    with pytest.raises(ConfigError, match="cannot be evaluated by the runner"):
        EndpointDirectory(None).resolve(bundle)


# ----------------------------------------------------------------------------------- index generation


def test_index_is_built_once_and_reused(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", "1.0.0")
    home = tmp_path / "home"
    first = open_index(bundle, home)
    assert first is not None
    path = first.path
    assert path.parent == home / "indexes" / "support-chat"
    mtime = path.stat().st_mtime_ns
    second = open_index(bundle, home)
    assert second is not None and second.path == path and path.stat().st_mtime_ns == mtime
    hits = first.search("How much does a storage add-on cost?", 4)
    assert len(hits) == 4 and any(h.document == "plans-and-pricing.md" for h in hits)
    first.close()
    second.close()


def test_pinned_generation_must_match(tmp_path: Path) -> None:
    home = tmp_path / "home"
    built = open_index(write_bundle(tmp_path / "b", "1.0.0"), home)
    assert built is not None
    generation = built.info.generation
    built.close()
    same = open_index(write_bundle(tmp_path / "b", "1.0.1", retrieval={"index_generation": generation}), home)
    assert same is not None and same.info.generation == generation
    same.close()
    wrong = write_bundle(tmp_path / "b", "1.0.2", retrieval={"index_generation": "gen-0000000000000000"})
    with pytest.raises(ConfigError, match=f"set retrieval.index_generation to {generation}"):
        open_index(wrong, home)


def test_changed_corpus_is_refused(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", "1.0.0")
    (tmp_path / "b" / "shared" / "corpus" / "plans-and-pricing.md").write_text("changed\n")
    with pytest.raises(ConfigError, match=r"changed since bundle support-chat@1\.0\.0 was loaded"):
        open_index(bundle, tmp_path / "home")


def test_no_retrieval_no_index(tmp_path: Path) -> None:
    assert open_index(write_bundle(tmp_path / "b", "0.1.0", retrieval=None), tmp_path / "home") is None


def test_open_runtime_answers_from_the_bundle_generation(emu: EmulatorHandle, tmp_path: Path) -> None:
    bundle = load_bundle(SUPPORT / "1.0.0")
    settings = settings_for(emu, tmp_path)

    async def go() -> Any:
        with httpx.Client(timeout=30) as sync_client:
            directory = EndpointDirectory(azure.arm_client(settings, client=sync_client))
            async with httpx.AsyncClient(timeout=30) as client:
                runtime, target = open_runtime(bundle, settings, directory, client=client)
                assert target.deployment == "support-chat-4o"
                return await runtime.answer("What does each storage add-on cost per month?")

    answer = asyncio.run(go())
    assert list((tmp_path / "indexes" / "support-chat").glob("gen-*.db"))
    assert "plans-and-pricing.md" in {p.document for p in answer.contexts}
    assert "$4" in answer.content


def test_close_releases_the_generation(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", "1.0.0")
    index = open_index(bundle, tmp_path / "home")
    runtime = BundleRuntime(bundle, azure_stub(), index)
    assert runtime.retrieve("free trial")
    runtime.close()
    with pytest.raises(Exception, match="closed"):
        runtime.retrieve("free trial")
    BundleRuntime(bundle, azure_stub(), ParagraphRetriever(bundle)).close()  # no close(): nothing to do
