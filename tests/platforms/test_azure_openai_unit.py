"""AzureOpenAIClient on httpx.MockTransport: request shapes, parsing, POST guards, paging by `after`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from azure_fakes import FakeTime, error, ok, scripted, sync_http

from modelshift.errors import BadRequestError, PlatformError, TransientPlatformError
from modelshift.platforms import base
from modelshift.platforms.azure.openai import AzureOpenAIClient, account_name_from_endpoint, rate_limit_info

EP = "https://contoso-aoai.openai.azure.com/"
JOB = {"id": "ftjob-1", "object": "fine_tuning.job", "status": "pending", "model": "m", "training_file": "f"}


def client(script: list[Any]) -> tuple[AzureOpenAIClient, list[httpx.Request]]:
    handler, seen = scripted(script)
    return AzureOpenAIClient(sync_http(handler, FakeTime()), EP), seen


@pytest.mark.parametrize(
    ("endpoint", "account"),
    [
        ("https://contoso-aoai.openai.azure.com/", "contoso-aoai"),
        ("https://tailspin.cognitiveservices.azure.com", "tailspin"),
        ("https://proj.services.ai.azure.com/", "proj"),
        ("http://127.0.0.1:8123/accounts/fabrikam-aoai-swc/", "fabrikam-aoai-swc"),
        ("http://127.0.0.1:8123/accounts/", "127.0.0.1"),
        ("https://gateway.example.com/aoai/", "gateway.example.com"),
    ],
)
def test_account_name_from_endpoint(endpoint: str, account: str) -> None:
    assert account_name_from_endpoint(endpoint) == account


@pytest.mark.parametrize("endpoint", ["contoso.openai.azure.com", "", "ftp://x"])
def test_endpoint_must_be_http(endpoint: str) -> None:
    with pytest.raises(BadRequestError, match=r"properties\.endpoint"):
        AzureOpenAIClient(sync_http(lambda r: ok(), FakeTime()), endpoint)


def test_chat_request_and_result() -> None:
    body = {
        "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        "system_fingerprint": "new-field",
    }
    headers = {
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-remaining-tokens": "9990",
        "apim-request-id": "r1",
    }
    dp, seen = client([error(429, headers={"retry-after-ms": "5"}), ok(body, headers=headers)])
    result = dp.chat("chat-4o", [{"role": "user", "content": "hello"}], temperature=0, max_tokens=10)
    assert result.content == "hi" and result.finish_reason == "stop" and result.model == "gpt-4o-2024-11-20"
    assert result.usage == base.TokenUsage(prompt_tokens=5, completion_tokens=2, total_tokens=7)
    assert result.rate_limit.remaining_requests == 59 and result.rate_limit.remaining_tokens == 9990
    assert result.request_id == "r1" and result.latency_ms >= 0
    request = seen[-1]
    assert request.url.path == "/openai/deployments/chat-4o/chat/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "k"
    assert len(seen) == 2  # the 429 was retried: a completion creates nothing


def test_chat_without_choices_is_a_platform_error() -> None:
    dp, _ = client([ok({"choices": []})])
    with pytest.raises(PlatformError, match="no choices"):
        dp.chat("d", [{"role": "user", "content": "x"}])


def test_embeddings_are_returned_in_input_order() -> None:
    data = [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}]
    dp, seen = client([ok({"data": data, "usage": {"prompt_tokens": 3, "total_tokens": 3}})])
    result = dp.embed("emb", ["a", "b"])
    assert result.vectors == ((1.0, 0.0), (0.0, 1.0)) and result.usage.total_tokens == 3
    assert seen[0].url.path == "/openai/deployments/emb/embeddings"


def test_embeddings_count_mismatch() -> None:
    dp, _ = client([ok({"data": [{"index": 0, "embedding": [1.0]}]})])
    with pytest.raises(PlatformError, match="1 embeddings for 2 inputs"):
        dp.embed("emb", ["a", "b"])


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, base.RateLimitInfo()),
        ({"x-ratelimit-remaining-tokens": "-1"}, base.RateLimitInfo(remaining_tokens=-1)),
        ({"x-ratelimit-remaining-requests": "n/a"}, base.RateLimitInfo()),
        ({"x-ratelimit-limit-tokens": "30000.0"}, base.RateLimitInfo(limit_tokens=30000)),
    ],
)
def test_rate_limit_headers(headers: dict[str, str], expected: base.RateLimitInfo) -> None:
    assert rate_limit_info(httpx.Headers(headers)) == expected


def test_upload_is_multipart_with_purpose_and_filename() -> None:
    file = {
        "id": "file-1",
        "filename": "t.jsonl",
        "purpose": "fine-tune",
        "bytes": 3,
        "created_at": 1,
        "status": "x",
    }
    dp, seen = client([ok(file, status=201)])
    info = dp.upload_file("t.jsonl", b"{}\n")
    assert info.id == "file-1" and info.created_at is not None and info.created_at.year == 1970
    request = seen[0]
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="purpose"' in request.content and b"fine-tune" in request.content
    assert b'filename="t.jsonl"' in request.content


def test_upload_lost_response_is_found_not_repeated() -> None:
    listed = {"data": [{"id": "file-9", "filename": "t.jsonl", "bytes": 3, "purpose": "fine-tune"}]}
    dp, seen = client([httpx.ReadTimeout("lost"), ok(listed)])
    assert dp.upload_file("t.jsonl", b"abc").id == "file-9"
    assert [r.method for r in seen] == ["POST", "GET"]


def test_upload_not_found_after_failure_is_retried() -> None:
    dp, seen = client([error(503), ok({"data": []}), ok({"id": "file-2", "filename": "t.jsonl"}, status=201)])
    assert dp.upload_file("t.jsonl", b"abc").id == "file-2"
    assert [r.method for r in seen] == ["POST", "GET", "POST"]


def test_upload_same_name_other_size_is_not_taken_for_ours() -> None:
    listed = {"data": [{"id": "file-old", "filename": "t.jsonl", "bytes": 999}]}
    dp, _ = client([error(500), ok(listed), ok({"id": "file-new", "filename": "t.jsonl"}, status=201)])
    assert dp.upload_file("t.jsonl", b"abc").id == "file-new"


def test_job_create_with_suffix_is_guarded() -> None:
    found = {**JOB, "id": "ftjob-found", "suffix": "v2"}
    dp, seen = client([httpx.RemoteProtocolError("reset"), ok({"data": [found], "has_more": False})])
    job = dp.create_job(base.FineTuneJobSpec(model="m", training_file="f", suffix="v2"))
    assert job.id == "ftjob-found" and len(seen) == 2


def test_job_create_without_suffix_is_not_retried() -> None:
    dp, seen = client([error(503)])
    with pytest.raises(TransientPlatformError):
        dp.create_job(base.FineTuneJobSpec(model="m", training_file="f"))
    assert len(seen) == 1


def test_job_create_body() -> None:
    dp, seen = client([ok(JOB, status=201)])
    spec = base.FineTuneJobSpec(model="m", training_file="f", hyperparameters={"n_epochs": 3}, seed=1)
    dp.create_job(spec)
    assert json.loads(seen[0].content) == {
        "model": "m",
        "training_file": "f",
        "hyperparameters": {"n_epochs": 3},
        "seed": 1,
    }


def test_events_are_paged_by_after_and_sorted() -> None:
    def event(i: int) -> dict[str, Any]:
        return {"id": f"ev-{i}", "created_at": 100 + i, "level": "info", "message": f"m{i}"}

    dp, seen = client(
        [
            ok({"data": [event(3), event(2)], "has_more": True}),
            ok({"data": [event(1)], "has_more": False}),
        ]
    )
    events = dp.list_events("ftjob-1")
    assert [e.id for e in events] == ["ev-1", "ev-2", "ev-3"]
    assert "after" not in seen[0].url.params and seen[1].url.params["after"] == "ev-2"
    assert seen[0].url.path == "/openai/fine_tuning/jobs/ftjob-1/events"


def test_paging_that_does_not_advance_is_an_error() -> None:
    dp, _ = client([ok({"data": [{**JOB}], "has_more": True}), ok({"data": [{**JOB}], "has_more": True})])
    with pytest.raises(PlatformError, match="does not advance"):
        dp.list_jobs()


def test_cancel_and_get() -> None:
    dp, seen = client([error(502), ok({**JOB, "status": "cancelled"}), ok({**JOB, "status": "running"})])
    assert dp.cancel_job("ftjob-1").status is base.FineTuneStatus.CANCELLED
    assert dp.get_job("ftjob-1").status is base.FineTuneStatus.RUNNING
    assert seen[0].url.path == "/openai/fine_tuning/jobs/ftjob-1/cancel" and len(seen) == 3


def test_client_satisfies_the_protocols() -> None:
    dp, _ = client([])
    assert isinstance(dp, base.Inference) and isinstance(dp, base.FineTuning)
