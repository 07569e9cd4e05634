"""The pure parts of a re-run: request from a bundle, idempotency key, names, poll policy, event cursor."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import REPO

from modelshift.bundle import load_bundle
from modelshift.bundle.core import Bundle
from modelshift.errors import ConfigError
from modelshift.finetune import EventCursor, FineTuneRequest, PollPolicy, base_model_id, merge_hyperparameters
from modelshift.finetune.request import MAX_DEPLOYMENT_NAME, MAX_SUFFIX
from modelshift.platforms.base import FineTuneEvent, ModelRef

TARGET = ModelRef(name="gpt-4.1", version="2025-04-14")
AZURE_SUFFIX = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")
AZURE_DEPLOYMENT = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")


@pytest.fixture
def request_(claims_bundle: Bundle) -> FineTuneRequest:
    """The claims bundle re-run on gpt-4.1 in migration m-1."""
    return FineTuneRequest.from_bundle(claims_bundle, target=TARGET, migration_id="m-1")


def test_from_bundle_reads_the_fine_tune_section(request_: FineTuneRequest, claims_bundle: Bundle) -> None:
    assert request_.app == "claims-assistant"
    assert request_.base_model == "gpt-4.1-2025-04-14"
    assert request_.training == (claims_bundle.root.parent / "shared" / "train.jsonl").read_bytes()
    assert request_.validation == (claims_bundle.root.parent / "shared" / "valid.jsonl").read_bytes()
    assert dict(request_.hyperparameters) == {"batch_size": 4, "learning_rate_multiplier": 1.0, "n_epochs": 3}
    assert (request_.suffix, request_.seed) == ("claims-tone", 42)
    assert (request_.account.resource_group, request_.account.name) == ("rg-claims", "fabrikam-aoai-swc")
    assert (request_.baseline_deployment, request_.baseline_sku) == ("claims-ft", ("Standard", 20))
    assert "training=" not in repr(request_)  # megabytes of data stay out of logs


def test_a_bundle_that_is_not_fine_tuned_is_refused() -> None:
    support = load_bundle(REPO / "bundles" / "support-chat" / "1.0.0")
    with pytest.raises(ConfigError, match=r"model\.fine_tune: bundle support-chat@1\.0\.0 is not fine-tuned"):
        FineTuneRequest.from_bundle(support, target=TARGET, migration_id="m-1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": ModelRef(name="gpt-4.1")}, "has no version"),
        ({"migration_id": ""}, "no migration id"),
        ({"training": b""}, "training file is empty"),
        ({"training": b"  \n\n"}, "training file is empty"),
    ],
)
def test_unusable_requests_are_refused(
    request_: FineTuneRequest, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(request_, **change)


def test_base_model_id() -> None:
    assert base_model_id(ModelRef(name="gpt-4o-mini", version="2024-07-18")) == "gpt-4o-mini-2024-07-18"
    with pytest.raises(ConfigError, match="--target gpt-4o-mini@2024-07-18"):
        base_model_id(ModelRef(name="gpt-4o-mini"))


def test_the_key_is_stable_and_ignores_what_does_not_define_the_job(request_: FineTuneRequest) -> None:
    again = dataclasses.replace(request_)
    assert again.key == request_.key and len(request_.key) == 64
    reordered = dataclasses.replace(
        request_, hyperparameters=dict(reversed(list(request_.hyperparameters.items())))
    )
    assert reordered.key == request_.key
    # where it deploys and with which SKU does not change which job is run
    elsewhere = dataclasses.replace(request_, baseline_deployment="other", baseline_sku=("Standard", 1))
    assert elsewhere.key == request_.key


@pytest.mark.parametrize(
    "change",
    [
        {"migration_id": "m-2"},
        {"target": ModelRef(name="gpt-4.1", version="2025-05-01")},
        {"target": ModelRef(name="gpt-4o-mini", version="2025-04-14")},
        {"training": b'{"messages": []}\n'},
        {"validation": None},
        {"validation": b'{"messages": []}\n'},
        {"hyperparameters": {"n_epochs": 4, "batch_size": 4, "learning_rate_multiplier": 1.0}},
        {"hyperparameters": {"n_epochs": 3, "batch_size": 4}},
        {"hyperparameters": {}},
    ],
)
def test_the_key_changes_with_each_input_that_defines_the_job(
    request_: FineTuneRequest, change: dict[str, Any]
) -> None:
    assert dataclasses.replace(request_, **change).key != request_.key


@pytest.mark.parametrize(
    ("bundle_hp", "adjusted", "expected"),
    [
        ({"n_epochs": 3, "batch_size": None}, None, {"n_epochs": 3}),
        ({"n_epochs": 3}, {}, {"n_epochs": 3}),
        ({"n_epochs": 3}, {"n_epochs": 5}, {"n_epochs": 5}),
        ({"n_epochs": 3, "batch_size": 4}, {"batch_size": None}, {"n_epochs": 3}),
        ({}, {"learning_rate_multiplier": 0.5}, {"learning_rate_multiplier": 0.5}),
        ({"n_epochs": 1}, {"method": "supervised"}, {"method": "supervised", "n_epochs": 1}),
        ({}, {}, {}),
    ],
)
def test_merge_hyperparameters(
    bundle_hp: dict[str, Any], adjusted: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    assert merge_hyperparameters(bundle_hp, adjusted) == expected


@pytest.mark.parametrize("bad", [True, [1], {"a": 1}])
def test_merge_hyperparameters_refuses_non_scalars(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"n_epochs=.* is not a number or string"):
        merge_hyperparameters({}, {"n_epochs": bad})


def test_plan_adjustments_go_through_from_bundle(claims_bundle: Bundle) -> None:
    adjusted = FineTuneRequest.from_bundle(
        claims_bundle, target=TARGET, migration_id="m-1", hyperparameters={"n_epochs": 2}
    )
    assert adjusted.hyperparameters["n_epochs"] == 2


@pytest.mark.parametrize(
    ("suffix", "app", "expected_head"),
    [
        ("claims-tone", "claims-assistant", "claims-tone"),
        (None, "claims-assistant", "claims-assistant"),
        ("x" * 40, "claims-assistant", "x" * 31),  # the longest suffix Azure allows still fits with the key
        ("a" * 31, "claims-assistant", "a" * 31),
        ("a" * 32, "claims-assistant", "a" * 31),
        ("--", "claims-assistant", "ft"),
    ],
)
def test_job_suffix_fits_azures_rule(
    request_: FineTuneRequest, suffix: str | None, app: str, expected_head: str
) -> None:
    request = dataclasses.replace(request_, suffix=suffix, app=app)
    assert request.job_suffix == f"{expected_head}-{request.key[:8]}"
    assert AZURE_SUFFIX.match(request.job_suffix) and len(request.job_suffix) <= MAX_SUFFIX


@pytest.mark.parametrize(
    ("app", "target", "expected"),
    [
        (
            "claims-assistant",
            ModelRef(name="gpt-4o-mini", version="2024-07-18"),
            "claims-ft-4o-mini-2024-07-18",
        ),
        ("claims-assistant", TARGET, "claims-ft-4.1-2025-04-14"),
        ("hr", ModelRef(name="Phi-4", version="7"), "hr-ft-Phi-4-7"),
        ("a" * 63, ModelRef(name="gpt-4o", version="2024-11-20"), None),
        ("svc", ModelRef(name="my model/x", version="1"), "svc-ft-my-model-x-1"),
    ],
)
def test_deployment_name_is_deterministic_and_valid(
    request_: FineTuneRequest, app: str, target: ModelRef, expected: str | None
) -> None:
    request = dataclasses.replace(request_, app=app, target=target)
    name = request.deployment_name
    assert name == dataclasses.replace(request).deployment_name
    assert name.endswith(f"-{request.key[:8]}") and AZURE_DEPLOYMENT.match(name)
    assert len(name) <= MAX_DEPLOYMENT_NAME
    if expected is not None:
        assert name == f"{expected}-{request.key[:8]}"


def test_upload_names_carry_the_content_digest(request_: FineTuneRequest) -> None:
    assert request_.filename("training") == f"claims-assistant-training-{request_.training_sha256[:16]}.jsonl"
    assert request_.filename("validation").endswith(f"{request_.validation_sha256[:16]}.jsonl")  # type: ignore[index]
    # the same bytes in another migration upload under the same name (found again, not re-uploaded)
    other = dataclasses.replace(request_, migration_id="m-2")
    assert other.filename("training") == request_.filename("training")


# ------------------------------------------------------------------------------------------- polling


@pytest.mark.parametrize(
    ("policy", "attempts", "expected"),
    [
        (PollPolicy(initial=30, maximum=300, multiplier=1.5), [0, 1, 2], [30, 45, 67.5]),
        (PollPolicy(initial=30, maximum=300, multiplier=1.5), [6, 7, 1000], [300, 300, 300]),
        (PollPolicy(initial=10, maximum=10, multiplier=1), [0, 5], [10, 10]),
        (PollPolicy(initial=1, maximum=8, multiplier=2), [2, 3, 4], [4, 8, 8]),
    ],
)
def test_poll_intervals(policy: PollPolicy, attempts: list[int], expected: list[float]) -> None:
    assert [policy.interval(a) for a in attempts] == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0},
        {"initial": -1},
        {"initial": 10, "maximum": 5},
        {"multiplier": 0.5},
        {"timeout": 0},
    ],
)
def test_inconsistent_poll_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="poll policy"):
        PollPolicy(**kwargs)


def _events(*ids: str) -> list[FineTuneEvent]:
    start = datetime(2026, 1, 15, tzinfo=UTC)
    return [
        FineTuneEvent(id=i, created_at=start + timedelta(seconds=n), level="info", message=i)
        for n, i in enumerate(ids)
    ]


def test_event_cursor_hands_each_event_on_once() -> None:
    cursor = EventCursor()
    assert [e.id for e in cursor.new(_events())] == [] and cursor.last_event_id is None
    assert [e.id for e in cursor.new(_events("a", "b"))] == ["a", "b"]
    assert [e.id for e in cursor.new(_events("a", "b"))] == []
    assert [e.id for e in cursor.new(_events("a", "b", "c", "d"))] == ["c", "d"]
    assert cursor.last_event_id == "d"


@pytest.mark.parametrize(
    ("stored", "listed", "expected"),
    [
        ("b", ("a", "b", "c"), ["c"]),
        ("c", ("a", "b", "c"), []),
        ("a", ("a",), []),
        (None, ("a", "b"), ["a", "b"]),
        # the stored event is not (yet) listed: better to repeat than to lose one
        ("zz", ("a", "b"), ["a", "b"]),
    ],
)
def test_event_cursor_resumes_after_the_stored_event(
    stored: str | None, listed: tuple[str, ...], expected: list[str]
) -> None:
    cursor = EventCursor(stored)
    assert [e.id for e in cursor.new(_events(*listed))] == expected
    assert [e.id for e in cursor.new(_events(*listed, "new"))] == ["new"]
