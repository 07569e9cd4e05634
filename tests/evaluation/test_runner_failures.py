"""Runner failure handling, unit level: scripted platform answers through httpx.MockTransport.

429s are re-sent after the platform's wait and never count as attempts; transient errors are retried
with backoff up to max_attempts; permanent ones are recorded at once. Every item yields one outcome.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from runner_helpers import SUPPORT, ParagraphRetriever, small_dataset
from test_runner_ratelimit import FakeTime

from modelshift.bundle import load_bundle
from modelshift.evaluation.ratelimit import RateLimiter, RateLimits
from modelshift.evaluation.runner import ItemOutcome, Progress, Runner, RunnerConfig
from modelshift.orchestration import SINGLE_ATTEMPT, BundleRuntime
from modelshift.platforms import azure
from modelshift.settings import Settings

ENDPOINT = "https://contoso-aoai-eus.openai.azure.com/"


def ok_body(content: str = "The answer. [plans-and-pricing.md]") -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-2024-05-13",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 500, "completion_tokens": 10, "total_tokens": 510},
    }


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": f"scripted {status}"}}, headers=headers
    )


Script = Callable[[str, int], httpx.Response]


def run(
    script: Script, n: int = 3, config: RunnerConfig | None = None
) -> tuple[list[ItemOutcome], dict[str, int], FakeTime, Runner]:
    """Run ``n`` items; ``script(question, nth_call_for_that_question)`` answers each request."""
    calls: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        user = body["messages"][-1]["content"]
        question = user.rsplit("Question:", 1)[-1].strip()
        calls[question] = calls.get(question, 0) + 1
        return script(question, calls[question])

    clock = FakeTime()
    bundle = load_bundle(SUPPORT / "1.0.0")
    settings = Settings(home=Path("."), api_key="k")
    progress: list[Progress] = []

    async def go() -> tuple[list[ItemOutcome], Runner]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            inference = azure.async_openai_client(ENDPOINT, settings, client=client, policy=SINGLE_ATTEMPT)
            runtime = BundleRuntime(bundle, inference, ParagraphRetriever(bundle))
            runner = Runner(
                RateLimiter(RateLimits.from_capacity(50), monotonic=clock.monotonic, sleep=clock.sleep),
                config=config,
                progress=progress.append,
                sleep=clock.sleep,
                monotonic=clock.monotonic,
            )
            result = await runner.run(runtime, small_dataset(n))
            return list(result.outcomes), runner

    outcomes, runner = asyncio.run(go())
    assert [p.done for p in progress] == list(range(1, n + 1))
    return outcomes, calls, clock, runner


def test_429_is_resent_after_the_wait_and_not_counted_twice() -> None:
    def script(question: str, nth: int) -> httpx.Response:
        if nth <= 2:
            return error(429, "429", {"retry-after-ms": "1500", "retry-after": "2"})
        return httpx.Response(200, json=ok_body())

    outcomes, calls, clock, runner = run(script)
    assert all(o.ok for o in outcomes)
    assert [o.attempts for o in outcomes] == [1, 1, 1]  # a 429 is not an attempt
    assert [o.throttled for o in outcomes] == [2, 2, 2]
    assert set(calls.values()) == {3}
    assert len(outcomes) == 3 and len({o.item_id for o in outcomes}) == 3
    assert clock.now >= 3.0  # two pauses of 1.5 s
    assert runner.limiter.throttled_count == 6


@pytest.mark.parametrize(
    ("failures", "max_attempts", "ok", "attempts"),
    [
        (0, 3, True, 1),
        (2, 3, True, 3),  # boundary: the last allowed attempt succeeds
        (3, 3, False, 3),  # boundary: one failure too many
        (5, 1, False, 1),
    ],
)
def test_transient_errors_are_retried_up_to_max_attempts(
    failures: int, max_attempts: int, ok: bool, attempts: int
) -> None:
    def script(question: str, nth: int) -> httpx.Response:
        if nth <= failures:
            return error(503 if nth % 2 else 500, "ServiceUnavailable")
        return httpx.Response(200, json=ok_body())

    outcomes, calls, _, _ = run(script, config=RunnerConfig(max_attempts=max_attempts))
    assert [o.ok for o in outcomes] == [ok] * 3
    assert [o.attempts for o in outcomes] == [attempts] * 3
    assert set(calls.values()) == {attempts}
    if not ok:
        assert all(o.error_kind and o.error_kind.startswith("TransientPlatformError") for o in outcomes)
        assert all("503" in (o.error_kind or "") or "500" in (o.error_kind or "") for o in outcomes)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "BadRequest", "BadRequestError 400"),
        (404, "DeploymentNotFound", "DeploymentNotFoundError 404"),
        (410, "ModelDeprecated", "ModelRetiredError 410"),
    ],
)
def test_permanent_errors_are_recorded_per_item_without_retry(status: int, code: str, kind: str) -> None:
    def script(question: str, nth: int) -> httpx.Response:
        if question.startswith("What's the minimum"):  # item q002 only
            return error(status, code)
        return httpx.Response(200, json=ok_body())

    outcomes, calls, _, _ = run(script)
    assert [o.ok for o in outcomes] == [True, False, True]
    failed = outcomes[1]
    assert failed.item_id == "q002" and failed.answer is None and failed.attempts == 1
    assert failed.error_kind == kind and failed.error
    assert failed.contexts  # the retrieval that went out is kept as evidence
    assert sorted(calls.values()) == [1, 1, 1]


def test_too_many_429s_end_the_item() -> None:
    def script(question: str, nth: int) -> httpx.Response:
        return error(429, "429", {"retry-after-ms": "10"})

    outcomes, calls, _, _ = run(script, n=1, config=RunnerConfig(max_throttled=4))
    assert not outcomes[0].ok and outcomes[0].throttled == 4
    assert outcomes[0].error_kind == "ThrottledError 429"
    assert sum(calls.values()) == 4


def test_outcome_json_round_trip() -> None:
    outcomes, _, _, _ = run(lambda q, n: httpx.Response(200, json=ok_body()), n=2)
    for o in outcomes:
        assert ItemOutcome.from_json(json.loads(json.dumps(o.to_json()))) == o
