"""The evaluate stage's library glue: summaries, the earlier record, accepting and rejecting a candidate.

ARM is an ``httpx.MockTransport`` that records every request (a DELETE answers 200, so nothing is polled)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from runner_helpers import write_bundle

from modelshift.bundle import Bundle
from modelshift.errors import IllegalTransitionError
from modelshift.evaluation.report import GateCounts, GateReport, MetricRow, Verdict
from modelshift.evaluation.stage import (
    EvaluationSummary,
    Rejection,
    accept_candidate,
    latest_record,
    reject_candidate,
    summary_from_record,
)
from modelshift.platforms.azure import arm_client
from modelshift.platforms.azure.arm import ArmClient
from modelshift.registry import register
from modelshift.settings import Settings, Stage
from modelshift.store import Store

ARM = "https://arm.test"


def _row(name: str, verdict: Verdict, *, critical: bool = False) -> MetricRow:
    return MetricRow(
        name=name, candidate=0.5, baseline=0.8, diff=-0.3, ci_low=-0.4, ci_high=-0.2, p_value=0.001,
        margin=0.03, greater_is_better=True, critical=critical, n=40, verdict=verdict, reason="test",
    )  # fmt: skip


def _report(*rows: MetricRow) -> GateReport:
    verdicts = {r.verdict for r in rows}
    verdict = (
        Verdict.FAIL
        if Verdict.FAIL in verdicts
        else Verdict.INCONCLUSIVE
        if Verdict.INCONCLUSIVE in verdicts
        else Verdict.PASS
    )
    return GateReport(
        verdict=verdict,
        rows=list(rows),
        counts=GateCounts(paired=40, failed_candidate=["q1"]),
        confidence=0.95,
        min_items=30,
        seed=0,
        n_resamples=200,
    )


class Pair:
    """A registered baseline (production) and candidate of support-chat, and the ARM requests seen."""

    def __init__(self, root: Path, candidate_model: dict[str, object]) -> None:
        self.store = Store.open(f"sqlite:///{root / 'state.db'}")
        self.baseline = write_bundle(root / "b", "1.0.0")
        self.candidate = write_bundle(root / "b", "1.1.0", model=candidate_model)
        register(self.store, self.baseline, actor="test", adopt=True)
        register(self.store, self.candidate, actor="test")
        self.requests: list[httpx.Request] = []

    def arm(self, client: httpx.Client) -> ArmClient:
        """An ArmClient on a MockTransport that records requests."""
        return arm_client(Settings(_env_file=None, arm_url=ARM, arm_token=SecretStr("t")), client=client)

    def handler(self, request: httpx.Request) -> httpx.Response:
        """ARM: every DELETE succeeds at once."""
        self.requests.append(request)
        return httpx.Response(200 if request.method == "DELETE" else 404, json={})

    def summary(self, report: GateReport, record_id: int | None = None) -> EvaluationSummary:
        """A summary of ``report`` for this pair."""
        return EvaluationSummary(
            verdict=report.verdict.value,
            passed=report.passed,
            summary=report.summary(),
            failing=[r.name for r in report.failing()],
            record_id=record_id,
            baseline_digest=self.baseline.digest,
            candidate_digest=self.candidate.digest,
            dataset_digest="d" * 64,
        )

    def reject(self, summary: EvaluationSummary, candidate: Bundle | None = None) -> Rejection:
        """reject_candidate through the recording ARM."""
        with httpx.Client(transport=httpx.MockTransport(self.handler)) as client:
            return reject_candidate(
                self.store,
                self.arm(client),
                candidate or self.candidate,
                self.baseline,
                summary,
                actor="tester",
                migration_id="m1",
            )


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path, {"deployment": "support-chat-cand"})
    yield p
    p.store.close()


FAILED = _report(_row("answer_f1", Verdict.FAIL, critical=True), _row("groundedness", Verdict.INCONCLUSIVE))


def test_a_failing_candidate_loses_its_deployment_and_is_rejected_with_the_failing_metrics(
    pair: Pair,
) -> None:
    summary = pair.summary(FAILED)
    rejection = pair.reject(summary)
    assert [(r.method, r.url.path.rsplit("/", 1)[-1]) for r in pair.requests] == [
        ("DELETE", "support-chat-cand")
    ]
    assert "/resourceGroups/rg-support/" in pair.requests[0].url.path
    assert rejection.deleted_deployment == "support-chat-cand"
    assert pair.store.get_bundle_by_digest(pair.candidate.digest).status == "rejected"
    assert pair.store.get_bundle_by_digest(pair.baseline.digest).status == "production"
    event = pair.store.audit_events()[-1]
    assert event.reason == "bundle.status_changed" and event.migration_id == "m1"
    assert event.data["evidence"]["failing"] == ["answer_f1"]
    # again (a retried task): the delete is repeated harmlessly, the status change is not
    pair.reject(summary)
    assert len(pair.requests) == 2 and pair.store.audit_events()[-1].seq == event.seq


@pytest.mark.parametrize(
    ("model", "kept"),
    [
        pytest.param(
            {"deployment": "support-chat-4o"}, "baseline's own deployment", id="baseline-deployment"
        ),
        pytest.param(
            {"platform": "azure-ml", "endpoint": "https://ml.test/score"},
            "no azure-openai deployment",
            id="not-azure-openai",
        ),
    ],
)
def test_a_deployment_that_is_not_the_candidates_own_is_never_deleted(
    tmp_path: Path, model: dict[str, object], kept: str
) -> None:
    p = Pair(tmp_path, model)
    try:
        rejection = p.reject(p.summary(FAILED))
        assert p.requests == []
        assert kept in str(rejection.kept_because)
        assert p.store.get_bundle_by_digest(p.candidate.digest).status == "rejected"
    finally:
        p.store.close()


def test_a_passing_candidate_is_evaluated_once(pair: Pair) -> None:
    summary = pair.summary(_report(_row("answer_f1", Verdict.PASS)))
    assert accept_candidate(pair.store, summary, actor="tester", migration_id="m1") == "evaluated"
    seq = pair.store.audit_events()[-1].seq
    assert accept_candidate(pair.store, summary, actor="tester", migration_id="m1") == "evaluated"
    assert pair.store.audit_events()[-1].seq == seq
    # an evaluated candidate cannot be accepted into candidate again, but it may still be rejected later
    with pytest.raises(IllegalTransitionError):
        pair.store.set_status(pair.candidate.digest, "candidate", actor="t", reason="r")


def test_the_latest_record_of_exactly_this_pair_is_found_and_summarized(pair: Pair) -> None:
    assert latest_record(pair.store, pair.candidate.digest, pair.baseline.digest) is None
    for _ in range(2):
        last = pair.store.record_evaluation(
            pair.candidate.digest, "d" * 64, False, "fail", FAILED.model_dump(mode="json"),
            baseline_digest=pair.baseline.digest, actor="tester", migration_id="m1",
        )  # fmt: skip
    found = latest_record(pair.store, pair.candidate.digest, pair.baseline.digest)
    assert found is not None and found.id == last.id
    # another baseline, or the baseline's own record, is not this pair
    assert latest_record(pair.store, pair.baseline.digest, pair.baseline.digest) is None
    assert latest_record(pair.store, pair.candidate.digest, pair.candidate.digest) is None
    summary = summary_from_record(found)
    assert (summary.verdict, summary.passed, summary.reused) == ("fail", False, True)
    assert summary.failing == ["answer_f1"] and summary.vetoes == ["answer_f1"]
    assert summary.inconclusive == ["groundedness"] and summary.failed_items == 1 and summary.requests == 0
    assert summary.evidence()["record_id"] == last.id


@pytest.mark.parametrize(
    ("value", "runs"),
    [
        (None, {"plan", "prepare", "evaluate", "canary"}),
        ("plan", {"plan"}),
        ("prepare", {"plan", "prepare"}),
        ("evaluate", {"plan", "prepare", "evaluate"}),
    ],
)
def test_stop_after_decides_which_stages_run(
    monkeypatch: pytest.MonkeyPatch, value: str | None, runs: set[str]
) -> None:
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    if value is None:
        monkeypatch.delenv("MODELSHIFT_STOP_AFTER", raising=False)
    else:
        monkeypatch.setenv("MODELSHIFT_STOP_AFTER", value)
    settings = Settings()
    assert {str(stage) for stage in Stage if settings.runs(stage)} == runs


@pytest.mark.parametrize("value", ["maybe", "canary"])
def test_a_bad_stop_after_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MODELSHIFT_STOP_AFTER", value)
    with pytest.raises(ValueError, match="stop_after"):
        Settings()
