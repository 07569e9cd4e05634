"""LLM-judge metrics: azure-ai-evaluation's evaluators against the emulator's judge over real HTTP.

The judge deployments live in the emulator's contoso account next to the bundles' own: a healthy gpt-4o-mini
judge, one on a retired model (410), and none at all (404). Runs use a few golden items to stay fast.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from runner_helpers import small_dataset, write_bundle
from test_runner import ACCOUNT, BIG, scenario_with
from typer.testing import CliRunner

from modelshift.bundle import Bundle, load_bundle
from modelshift.bundle.manifest import Evaluation, Judge, JudgeModel
from modelshift.cli import eval as eval_cmds
from modelshift.emulator.judge import JudgeRequest, judge_verdict, parse_judge_prompt
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import (
    BundleValidationError,
    ConfigError,
    DeploymentNotFoundError,
    ModelRetiredError,
)
from modelshift.evaluation.dataset import Dataset
from modelshift.evaluation.judge import (
    JudgeTarget,
    evaluator_version,
    judge_inputs,
    open_judge,
    package_version,
    resolve_judge,
)
from modelshift.evaluation.pair import PairResult, evaluate_pair
from modelshift.evaluation.ratelimit import RateLimits
from modelshift.evaluation.report import Verdict
from modelshift.evaluation.results import aggregate
from modelshift.evaluation.runner import RUNNER_VERSION, BundleRun, ItemOutcome
from modelshift.orchestration.connect import EndpointDirectory
from modelshift.orchestration.runtime import Passage
from modelshift.platforms.azure import arm_client
from modelshift.settings import Settings, get_settings
from modelshift.store import Store

REPO = Path(__file__).resolve().parents[2]
WORSE = "worse-4o"
JUDGE = "judge-4o-mini"
RETIRED_JUDGE = "judge-35-0613"
ALL = ["groundedness", "relevance", "coherence", "fluency", "similarity"]


def judge_section(deployment: str = JUDGE, metrics: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "deployment": deployment,
        "model": {"name": "gpt-4o-mini", "version": "2024-07-18"},
        "metrics": metrics or ALL,
        **extra,
    }


def with_judge(
    root: Path,
    version: str,
    judge: dict[str, Any] | None,
    policy: dict[str, Any] | None = None,
    **changes: Any,
) -> Bundle:
    """support-chat as ``version``, its evaluation policy (updated by ``policy``) pinning ``judge``."""
    source = yaml.safe_load((REPO / "bundles/support-chat/1.0.0/bundle.yaml").read_text())
    evaluation = {**source["evaluation"], **(policy or {}), "judge": judge}
    return write_bundle(root, version, evaluation=evaluation, **changes)


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    scenario = scenario_with(BIG, 450)
    account = scenario["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    for name, model, version in (
        (WORSE, "gpt-4o", "2024-08-06"),
        (JUDGE, "gpt-4o-mini", "2024-07-18"),
        (RETIRED_JUDGE, "gpt-35-turbo", "0613"),
    ):
        account["deployments"].append(
            {
                "name": name,
                "model": {"format": "OpenAI", "name": model, "version": version},
                "sku": {"name": "GlobalStandard", "capacity": 1000},
            }
        )
    with running_emulator(scenario, latency_scale=0.0) as handle:
        yield handle


def settings_for(emu: EmulatorHandle, home: Path) -> Settings:
    return Settings(home=home, arm_url=emu.arm_url, api_key=emu.api_key, arm_token=emu.bearer_token)


def evaluate(
    emu: EmulatorHandle,
    baseline: Bundle,
    candidate: Bundle,
    dataset: Dataset,
    home: Path,
    store: Store | None = None,
    *,
    arm: bool = True,
) -> PairResult:
    settings = settings_for(emu, home)

    async def go() -> PairResult:
        directory = EndpointDirectory(arm_client(settings, client=sync) if arm else None)
        async with httpx.AsyncClient(timeout=30) as client:
            return await evaluate_pair(
                baseline,
                candidate,
                settings=settings,
                directory=directory,
                client=client,
                dataset=dataset,
                store=store,
            )

    with httpx.Client(timeout=30) as sync:
        return asyncio.run(go())


def mean(result: PairResult, side: str, metric: str) -> float:
    items = result.baseline_items if side == "baseline" else result.candidate_items
    value = aggregate(items).values[f"judge_{metric}"]
    assert value is not None, f"no {side} item has a judge {metric} score"
    return value


# ------------------------------------------------------------------------------------------ end to end


CONNECTS: list[Any] = []
RECORDING = {"on": False}


def _record_connects(event: str, args: tuple[Any, ...]) -> None:
    if RECORDING["on"] and event == "socket.connect":
        CONNECTS.append(args[1])


@pytest.mark.slow  # imports azure-ai-evaluation (seconds) and judges dozens of answers
def test_judge_scores_every_item_through_the_package(emu: EmulatorHandle, tmp_path: Path) -> None:
    bundle = with_judge(tmp_path / "b", "1.0.0", judge_section(), model={"deployment": BIG})
    sys.addaudithook(_record_connects)  # cannot be removed: it records only while RECORDING is on
    CONNECTS.clear()
    RECORDING["on"] = True
    try:
        result = evaluate(emu, bundle, bundle, small_dataset(6), tmp_path / "home")
    finally:
        RECORDING["on"] = False
    # offline: azure-ai-evaluation fetched nothing (no nltk data, no tiktoken files, no telemetry)
    remote = [a for a in CONNECTS if isinstance(a, tuple) and a[0] not in ("127.0.0.1", "::1", "localhost")]
    assert CONNECTS and not remote, remote
    for items in (result.baseline_items, result.candidate_items):
        assert len(items) == 6
        for item in items:
            assert not item.failed and item.judge_errors == {}
            assert set(item.judge) == set(ALL)
            assert all(score in (1.0, 2.0, 3.0, 4.0, 5.0) for score in item.judge.values())
    # the same answers judged by the same judge: the same scores on both sides
    assert [i.judge for i in result.baseline_items] == [i.judge for i in result.candidate_items]
    assert result.baseline.evaluator_version.startswith(f"{RUNNER_VERSION}+judge-")
    assert result.baseline.outcomes[0].judge == result.baseline_items[0].judge


@pytest.mark.slow  # imports azure-ai-evaluation (seconds) and judges dozens of answers
def test_worse_candidate_gets_lower_judge_scores(emu: EmulatorHandle, tmp_path: Path) -> None:
    judge = judge_section(metrics=["groundedness", "relevance", "similarity"])
    gated = {
        "judge_relevance": {"greater_is_better": True, "absolute_margin": 0.1},
        "judge_similarity": {"greater_is_better": True, "absolute_margin": 0.1},
    }
    base = with_judge(tmp_path / "b", "1.0.0", judge, model={"deployment": BIG})
    worse = with_judge(
        tmp_path / "b",
        "2.0.0",
        judge,
        model={"deployment": WORSE, "version": "2024-08-06"},
        policy={"min_items": 20, "metrics": gated},
    )
    result = evaluate(emu, base, worse, small_dataset(24), tmp_path / "home")
    assert result.candidate.failed == ()
    for metric in ("groundedness", "relevance", "similarity"):
        assert mean(result, "candidate", metric) < mean(result, "baseline", metric), metric
    # the gate reads the judge's scores like any metric: paired per item, and the worse candidate does not
    # pass on them (24 items are too few for significance here, so not "fail": the full set is slower)
    rows = {row.name: row for row in result.report.rows}
    assert set(rows) == set(gated)
    for name in gated:
        row = rows[name]
        assert row.n == 24 and row.diff is not None and row.diff < -row.margin  # type: ignore[operator]
        assert row.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE), result.report.summary()
    assert not result.report.passed


def test_a_bundle_without_a_judge_runs_no_judge(emu: EmulatorHandle, tmp_path: Path) -> None:
    bundle = with_judge(tmp_path / "b", "1.0.0", None, model={"deployment": BIG})
    result = evaluate(emu, bundle, bundle, small_dataset(3), tmp_path / "home")
    assert result.baseline.evaluator_version == RUNNER_VERSION
    assert all(item.judge == {} and item.judge_errors == {} for item in result.candidate_items)
    assert aggregate(result.candidate_items).values["judge_relevance"] is None


@pytest.mark.slow  # a fresh interpreter imports modelshift
def test_the_judge_package_is_imported_only_when_a_judge_runs() -> None:
    code = (
        "import sys\n"
        "import modelshift.evaluation.pair, modelshift.evaluation.judge, modelshift.emulator.app\n"
        "assert 'azure.ai.evaluation' not in sys.modules, 'imported eagerly'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_judge_change_measures_the_baseline_again(emu: EmulatorHandle, tmp_path: Path) -> None:
    root = tmp_path / "b"
    first = with_judge(root, "1.0.0", judge_section(metrics=["relevance"]), model={"deployment": BIG})
    same_judge = with_judge(root, "1.0.1", judge_section(metrics=["relevance"]), model={"deployment": BIG})
    new_judge = with_judge(
        root, "1.0.2", judge_section(metrics=["relevance", "fluency"]), model={"deployment": BIG}
    )
    data = small_dataset(4)
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        one = evaluate(emu, first, same_judge, data, tmp_path / "home", store)
        assert not one.baseline.cached
        two = evaluate(emu, first, same_judge, data, tmp_path / "home", store)
        assert two.baseline.cached and two.candidate.cached  # same judge: the stored runs
        assert two.baseline.outcomes == one.baseline.outcomes
        three = evaluate(emu, first, new_judge, data, tmp_path / "home", store)
        assert not three.baseline.cached  # the candidate pins another judge: the baseline is measured again
        assert three.baseline.evaluator_version != one.baseline.evaluator_version
        assert all(set(o.judge) == {"relevance", "fluency"} for o in three.baseline.outcomes)


def test_judge_errors_are_recorded_per_item(emu: EmulatorHandle, tmp_path: Path) -> None:
    bundle = with_judge(
        tmp_path / "b", "1.0.0", judge_section(metrics=["relevance"]), model={"deployment": BIG}
    )
    # 408s are not retried by azure-ai-evaluation: some of the judge's calls fail, the run goes on
    emu.inject_faults(ACCOUNT, JUDGE, timeout_rate=0.5, timeout_seconds=0)
    try:
        with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
            result = evaluate(emu, bundle, bundle, small_dataset(8), tmp_path / "home", store)
            cached = store_has_run(store, result)
    finally:
        emu.clear_faults(ACCOUNT, JUDGE)
    items = result.baseline_items
    errored = [i for i in items if i.judge_errors]
    scored = [i for i in items if "relevance" in i.judge]
    assert errored and scored and len(errored) + len(scored) == 8
    assert all("408" in i.judge_errors["relevance"] and not i.failed for i in errored)
    assert all(i.answer_f1 is not None for i in errored)  # the item's other metrics still count
    assert not cached  # a run the judge could not fully score is measured again next time


@pytest.mark.slow  # azure-ai-evaluation waits 3 s before its first retry
def test_transient_judge_errors_are_retried_and_lose_nothing(emu: EmulatorHandle, tmp_path: Path) -> None:
    bundle = with_judge(
        tmp_path / "b", "1.0.0", judge_section(metrics=["relevance"]), model={"deployment": BIG}
    )
    emu.inject_faults(ACCOUNT, JUDGE, rate_503=0.2)
    try:
        result = evaluate(emu, bundle, bundle, small_dataset(4), tmp_path / "home")
    finally:
        emu.clear_faults(ACCOUNT, JUDGE)
    assert all(set(i.judge) == {"relevance"} and not i.judge_errors for i in result.baseline_items)


def test_the_judge_is_paced_by_its_deployments_limits(emu: EmulatorHandle, tmp_path: Path) -> None:
    bundle = with_judge(
        tmp_path / "b", "1.0.0", judge_section(metrics=["fluency"]), model={"deployment": BIG}
    )
    settings = settings_for(emu, tmp_path)
    outcomes = tuple(ItemOutcome(f"q{i}", "Why?", "ref", (), f"Answer number {i}.") for i in range(3))
    with httpx.Client(timeout=30) as sync:
        judge = open_judge(
            bundle, settings, EndpointDirectory(arm_client(settings, client=sync)), concurrency=2
        )
    assert judge is not None and judge.limiter is not None
    assert judge.limiter.limits == RateLimits.from_capacity(1000)  # the judge deployment's ARM capacity
    run = asyncio.run(judge.judge(BundleRun(bundle.digest, "data", RUNNER_VERSION, outcomes), "t"))
    assert judge.calls == 3 and all("fluency" in o.judge for o in run.outcomes)
    assert run.evaluator_version == judge.evaluator_version != RUNNER_VERSION


def store_has_run(store: Store, result: PairResult) -> bool:
    from modelshift.evaluation.records import EvaluationStore

    run = result.baseline
    return (
        EvaluationStore(store).cached_run(run.bundle_digest, run.dataset_digest, run.evaluator_version)
        is not None
    )


# ------------------------------------------------------------------------------------- a judge that is gone


def test_a_retired_judge_fails_naming_the_judge(emu: EmulatorHandle, tmp_path: Path) -> None:
    judge = {**judge_section(RETIRED_JUDGE), "model": {"name": "gpt-35-turbo", "version": "0613"}}
    bundle = with_judge(tmp_path / "b", "1.0.0", judge, model={"deployment": BIG})
    with pytest.raises(ModelRetiredError) as caught:
        evaluate(emu, bundle, bundle, small_dataset(3), tmp_path / "home")
    message = str(caught.value)
    assert "410" in message and RETIRED_JUDGE in message and "gpt-35-turbo 0613" in message
    assert str(bundle.yaml_path) in message and "evaluation.judge" in message


def test_a_judge_that_fails_after_the_first_item_raises_the_platform_error(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    # the first item failed (nothing to judge), so the retired judge is met by the concurrent items
    judge = {**judge_section(RETIRED_JUDGE), "model": {"name": "gpt-35-turbo", "version": "0613"}}
    endpoint = emu.endpoint_for(ACCOUNT)
    bundle = with_judge(tmp_path / "b", "1.0.0", judge, model={"deployment": BIG, "endpoint": endpoint})
    runner = open_judge(bundle, settings_for(emu, tmp_path), EndpointDirectory(None), concurrency=2)
    assert runner is not None
    outcomes = (
        ItemOutcome("q0", "Why?", "ref", (), None, error="timeout"),
        *(ItemOutcome(f"q{i}", "Why?", "ref", (), f"Answer {i}.") for i in range(1, 5)),
    )
    with pytest.raises(ModelRetiredError, match=RETIRED_JUDGE):
        asyncio.run(runner.judge(BundleRun(bundle.digest, "data", RUNNER_VERSION, outcomes)))


def test_a_missing_judge_deployment_fails_before_anything_runs(emu: EmulatorHandle, tmp_path: Path) -> None:
    bundle = with_judge(tmp_path / "b", "1.0.0", judge_section("no-such-judge"), model={"deployment": BIG})
    with pytest.raises(DeploymentNotFoundError, match="no-such-judge") as caught:
        evaluate(emu, bundle, bundle, small_dataset(3), tmp_path / "home")
    assert "evaluation.judge.deployment" in str(caught.value)


def test_a_judge_that_404s_on_the_data_plane_is_named(emu: EmulatorHandle, tmp_path: Path) -> None:
    # without ARM nothing is checked up front: the first judge call's 404 stops the evaluation
    endpoint = emu.endpoint_for(ACCOUNT)
    bundle = with_judge(
        tmp_path / "b",
        "1.0.0",
        judge_section("no-such-judge"),
        model={"deployment": BIG, "endpoint": endpoint},
    )
    with pytest.raises(DeploymentNotFoundError) as caught:
        evaluate(emu, bundle, bundle, small_dataset(3), tmp_path / "home", arm=False)
    message = str(caught.value)
    assert "404" in message and "no-such-judge" in message and str(bundle.yaml_path) in message


def test_a_judge_pin_that_the_deployment_does_not_run_is_refused(emu: EmulatorHandle, tmp_path: Path) -> None:
    judge = {**judge_section(), "model": {"name": "gpt-4o-mini", "version": "2099-01-01"}}
    bundle = with_judge(tmp_path / "b", "1.0.0", judge, model={"deployment": BIG})
    settings = settings_for(emu, tmp_path)
    with (
        pytest.raises(
            ConfigError, match=r"pins gpt-4o-mini 2099-01-01 but the deployment runs gpt-4o-mini@2024-07-18"
        ),
        httpx.Client(timeout=30) as sync,
    ):
        resolve_judge(bundle, settings, EndpointDirectory(arm_client(settings, client=sync)))


# ----------------------------------------------------------------------------------- the evaluator version


def target(**changes: Any) -> JudgeTarget:
    judge = Judge(
        deployment=JUDGE, model=JudgeModel(name="gpt-4o-mini", version="2024-07-18"), metrics=["relevance"]
    )
    fields: dict[str, Any] = {
        "judge": judge,
        "endpoint": "http://127.0.0.1:1/accounts/a/",
        "account": "a",
        "api_version": "2024-10-21",
        "source": "bundle.yaml",
    }
    fields.update(changes)
    return JudgeTarget(**fields)


@pytest.mark.parametrize(
    "changes",
    [
        {
            "judge": Judge(
                deployment="other",
                model=JudgeModel(name="gpt-4o-mini", version="2024-07-18"),
                metrics=["relevance"],
            )
        },
        {
            "judge": Judge(
                deployment=JUDGE,
                model=JudgeModel(name="gpt-4o-mini", version="2025-01-01"),
                metrics=["relevance"],
            )
        },
        {
            "judge": Judge(
                deployment=JUDGE, model=JudgeModel(name="gpt-4o", version="2024-07-18"), metrics=["relevance"]
            )
        },
        {
            "judge": Judge(
                deployment=JUDGE,
                model=JudgeModel(name="gpt-4o-mini", version="2024-07-18"),
                metrics=["relevance", "fluency"],
            )
        },
        {"account": "b"},
        {"api_version": "2025-01-01"},
    ],
    ids=["deployment", "model-version", "model-name", "evaluators", "account", "api-version"],
)
def test_every_part_of_the_judge_changes_the_evaluator_version(changes: dict[str, Any]) -> None:
    version = target().evaluator_version
    assert version == evaluator_version(target()) and len(version) <= 64
    assert target(**changes).evaluator_version != version
    assert evaluator_version(None) == RUNNER_VERSION


def test_the_package_version_is_in_the_identity() -> None:
    assert target().identity()["package"] == f"azure-ai-evaluation=={package_version()}"
    # the endpoint's spelling is not part of the judge (the account is)
    assert target(endpoint="http://other/").evaluator_version == target().evaluator_version


# --------------------------------------------------------------------------------------- bad judge config


def write_raw(tmp_path: Path, judge: Any, **evaluation: Any) -> Path:
    bundle = with_judge(tmp_path / "b", "1.0.0", None)
    manifest = yaml.safe_load(bundle.yaml_path.read_text())
    manifest["evaluation"]["judge"] = judge
    manifest["evaluation"].update(evaluation)
    bundle.yaml_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return bundle.yaml_path


JUDGE_OK = judge_section()


@pytest.mark.parametrize(
    ("judge", "evaluation", "field", "message"),
    [
        (
            {k: v for k, v in JUDGE_OK.items() if k != "deployment"},
            {},
            "evaluation.judge.deployment",
            "required",
        ),
        (
            {**JUDGE_OK, "metrics": ["relevance", "correctness"]},
            {},
            "evaluation.judge.metrics",
            "'correctness'",
        ),
        ({**JUDGE_OK, "metrics": ["relevance", "relevance"]}, {}, "evaluation.judge.metrics", "listed twice"),
        ({**JUDGE_OK, "metrics": []}, {}, "evaluation.judge.metrics", "at least 1"),
        ({**JUDGE_OK, "model": "gpt-4o-mini"}, {}, "evaluation.judge.model", ""),
        ({**JUDGE_OK, "model": {"name": "gpt-4o-mini"}}, {}, "evaluation.judge.model.version", "required"),
        ({**JUDGE_OK, "temperature": 0}, {}, "evaluation.judge.temperature", "unknown key"),
        (
            None,
            {"metrics": {"judge_relevance": {"greater_is_better": True, "absolute_margin": 0.2}}},
            "evaluation.metrics.judge_relevance",
            "no judge is configured",
        ),
        (
            {**JUDGE_OK, "metrics": ["fluency"]},
            {"metrics": {"judge_relevance": {"greater_is_better": True, "absolute_margin": 0.2}}},
            "evaluation.metrics.judge_relevance",
            "does not run relevance",
        ),
    ],
    ids=[
        "no-deployment",
        "unknown-metric",
        "metric-twice",
        "no-metrics",
        "model-not-pinned",
        "model-without-version",
        "unknown-key",
        "judge-metric-without-judge",
        "judge-metric-not-run",
    ],
)
def test_bad_judge_config_names_the_file_and_field(
    tmp_path: Path, judge: Any, evaluation: dict[str, Any], field: str, message: str
) -> None:
    path = write_raw(tmp_path, judge, **evaluation)
    with pytest.raises(BundleValidationError) as caught:
        load_bundle(path)
    problems = [p for p in caught.value.problems if f"{path}: {field}:" in p]
    assert problems, caught.value.problems
    assert message in problems[0]


def test_a_judge_needs_an_azure_openai_bundle(tmp_path: Path) -> None:
    bundle = with_judge(tmp_path / "b", "1.0.0", None)
    manifest = yaml.safe_load(bundle.yaml_path.read_text())
    manifest["model"] = {
        "platform": "openai-compatible",
        "endpoint": "http://127.0.0.1:8000/v1",
        "name": "gpt-4o",
        "version": "2024-05-13",
    }
    manifest["evaluation"]["judge"] = JUDGE_OK
    bundle.yaml_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    with pytest.raises(
        BundleValidationError, match=r"bundle.yaml: evaluation.judge: .*model.platform azure-openai"
    ):
        load_bundle(bundle.yaml_path)


def test_the_example_bundles_pin_no_judge_and_keep_their_digests() -> None:
    # judge: null in the examples; the judge schema must not change what an absent judge hashes to
    for app in ("support-chat", "claims-assistant", "hr-handbook"):
        bundle = load_bundle(REPO / "bundles" / app / "1.0.0")
        assert bundle.manifest.evaluation.judge is None
        assert bundle.manifest.canonical()["evaluation"]["judge"] is None


# ------------------------------------------------------------------------------ inputs and the emulator side


def outcome(
    answer: str | None = "Backups are kept for 30 days.", contexts: tuple[Passage, ...] = ()
) -> ItemOutcome:
    return ItemOutcome("q1", "How long are backups kept?", "30 days", (), answer, contexts)


def test_judge_inputs_per_evaluator() -> None:
    passage = Passage("corpus/retention.md", "Backups are kept for 30 days.")
    answered = outcome(contexts=(passage,))
    assert judge_inputs("groundedness", answered) == {
        "query": "How long are backups kept?",
        "response": "Backups are kept for 30 days.",
        "context": "[retention.md] Backups are kept for 30 days.",
    }
    assert judge_inputs("groundedness", outcome()) is None  # no retrieval: nothing to be grounded in
    assert judge_inputs("fluency", answered) == {"response": "Backups are kept for 30 days."}
    assert judge_inputs("similarity", answered)["ground_truth"] == "30 days"  # type: ignore[index]
    assert judge_inputs("relevance", outcome(answer=None)) is None  # a failed item is not judged
    assert judge_inputs("coherence", outcome(answer="  ")) is None
    with pytest.raises(ConfigError, match="unknown judge metric 'bleu'"):
        judge_inputs("bleu", answered)


@pytest.mark.parametrize(
    ("request_", "score"),
    [
        (
            JudgeRequest(
                "relevance", query="How long are backups kept?", response="Backups are kept for 30 days."
            ),
            5,
        ),
        (
            JudgeRequest(
                "relevance", query="How long are backups kept?", response="Invoices are emailed monthly."
            ),
            1,
        ),
        (JudgeRequest("relevance", query="How long are backups kept?", response="I don't know."), 1),
        (
            JudgeRequest(
                "groundedness",
                query="How long are backups kept?",
                response="Backups are kept for 30 days.",
                context="Backups are kept for 30 days on Standard.",
            ),
            5,
        ),
        (
            JudgeRequest(
                "groundedness",
                response="Backups are kept for 90 years.",
                context="Backups are kept for 30 days.",
            ),
            3,
        ),
        (JudgeRequest("groundedness", query="q", response="I don't know.", context="Backups are kept."), 3),
        (JudgeRequest("similarity", query="q", response="30 days", ground_truth="30 days"), 5),
        (JudgeRequest("similarity", query="q", response="ninety years", ground_truth="30 days"), 1),
        (JudgeRequest("fluency", response="backups backups backups backups"), 1),
        (
            JudgeRequest(
                "coherence", query="How long are backups kept?", response="Backups are kept for 30 days."
            ),
            5,
        ),
    ],
)
def test_emulator_judge_scores(request_: JudgeRequest, score: int) -> None:
    verdict = judge_verdict(request_)
    assert verdict["status"] == "completed" and verdict["score"] == score
    assert verdict["reason"].startswith("Let's think step by step:")


def test_emulator_judge_skips_empty_inputs_and_ignores_other_chats() -> None:
    verdict = judge_verdict(JudgeRequest("groundedness", response="Backups are kept.", context=""))
    assert verdict == {"reason": "CONTEXT is empty or not provided.", "score": None, "status": "skipped"}
    chat = [{"role": "system", "content": "You answer."}, {"role": "user", "content": "Question: why?"}]
    assert parse_judge_prompt(chat) is None
    reply = json.dumps(judge_verdict(JudgeRequest("fluency", response="Fine.")))
    assert json.loads(reply)["score"] in range(1, 6)


def test_the_readme_judge_example_validates() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in readme.split("```yaml\n")[1:]]
    example = next(b for b in blocks if b.startswith("evaluation:") and "judge:" in b)
    policy = Evaluation.model_validate(yaml.safe_load(example)["evaluation"])
    assert policy.judge is not None and policy.judge.model.version == "2024-07-18"
    assert {f"judge_{m}" for m in policy.judge.metrics} <= set(policy.metrics)


def test_modelshift_eval_names_a_retired_judge(
    emu: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    for name, value in {
        "MODELSHIFT_HOME": str(home),
        "MODELSHIFT_DATABASE_URL": f"sqlite:///{home / 'state.db'}",
        "MODELSHIFT_ARM_URL": emu.arm_url,
        "MODELSHIFT_ARM_TOKEN": emu.bearer_token,
        "MODELSHIFT_API_KEY": emu.api_key,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    judge = {**judge_section(RETIRED_JUDGE), "model": {"name": "gpt-35-turbo", "version": "0613"}}
    bundle = with_judge(tmp_path / "b", "1.0.0", judge, model={"deployment": BIG})
    app = typer.Typer()
    eval_cmds.register(app)

    @app.callback()
    def _root() -> None:
        """Root, so `eval` stays a sub-command."""

    try:
        result = CliRunner().invoke(
            app, ["eval", "--baseline", str(bundle.root), "--candidate", str(bundle.root)]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert RETIRED_JUDGE in result.stderr and "410" in result.stderr and "evaluation.judge" in result.stderr
