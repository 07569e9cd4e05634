"""Files and fine-tuning jobs over real HTTP, moving through their states on an advanced scenario clock."""

from __future__ import annotations

import json

import httpx
import pytest
from emulator_helpers import CONTRACTS, account_path, chat_url, contract, rag_messages

from modelshift.emulator.testing import EmulatorHandle

ACCOUNT = "fabrikam-aoai-swc"


def _good_jsonl(rows: int = 10) -> bytes:
    lines = (CONTRACTS / "finetune-training-data.chat.jsonl").read_text(encoding="utf-8").splitlines()
    lines = [ln for ln in lines if ln.strip()]
    return ("\n".join((lines * rows)[:rows]) + "\n").encode()


def _upload(emu: EmulatorHandle, data: httpx.Client, content: bytes, name: str = "train.jsonl") -> str:
    r = data.post(
        emu.endpoint_for(ACCOUNT) + "openai/files",
        data={"purpose": "fine-tune"},
        files={"file": (name, content, "application/jsonl")},
    )
    assert r.status_code == 201, r.text
    example = contract("finetune-file-upload.2024-10-21.json")["responses"]["201"]
    assert set(r.json()) >= set(example["body"])
    assert r.headers["location"].endswith(f"/openai/files/{r.json()['id']}")
    file_id: str = r.json()["id"]
    return file_id


def _create(
    emu: EmulatorHandle, data: httpx.Client, file_id: str, model: str = "gpt-4o-mini-2024-07-18"
) -> str:
    r = data.post(
        emu.endpoint_for(ACCOUNT) + "openai/fine_tuning/jobs", json={"model": model, "training_file": file_id}
    )
    assert r.status_code == 201, r.text
    example = contract("finetune-job-create.2024-10-21.json")["responses"]["201"]["body"]
    assert set(r.json()) >= set(example)
    assert r.json()["status"] == "created"
    job_id: str = r.json()["id"]
    return job_id


def test_files_crud(emu: EmulatorHandle, data: httpx.Client) -> None:
    content = _good_jsonl()
    file_id = _upload(emu, data, content)
    base = emu.endpoint_for(ACCOUNT) + "openai/files"
    assert [f["id"] for f in data.get(base).json()["data"]] == [file_id]
    assert data.get(base, params={"purpose": "batch"}).json()["data"] == []
    assert data.get(f"{base}/{file_id}").json()["bytes"] == len(content)
    assert data.get(f"{base}/{file_id}/content").content == content
    assert data.delete(f"{base}/{file_id}").json()["deleted"] is True
    assert data.get(f"{base}/{file_id}").status_code == 404


@pytest.mark.parametrize(
    ("form", "files"),
    [({"purpose": "nonsense"}, {"file": ("a.jsonl", b"{}", "text/plain")}), ({"purpose": "fine-tune"}, None)],
)
def test_upload_rejections(
    emu: EmulatorHandle,
    data: httpx.Client,
    form: dict[str, str],
    files: dict[str, tuple[str, bytes, str]] | None,
) -> None:
    r = data.post(
        emu.endpoint_for(ACCOUNT) + "openai/files", data=form, files=files or {"x": ("x", b"", "a/b")}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalidPayload"


def test_job_lifecycle_with_events_and_deployable_model(
    emu: EmulatorHandle, data: httpx.Client, arm: httpx.Client
) -> None:
    job_id = _create(emu, data, _upload(emu, data, _good_jsonl()))
    job_url = emu.endpoint_for(ACCOUNT) + f"openai/fine_tuning/jobs/{job_id}"
    statuses = []
    for seconds in (60, 10 * 60, 60 * 60, 60 * 60):  # gpt-4o-mini: 10 min queue, 90 min training
        emu.advance_clock(seconds)
        statuses.append(data.get(job_url).json()["status"])
    assert statuses == ["pending", "running", "running", "succeeded"]
    job = data.get(job_url).json()
    example = contract("finetune-job-get.2024-10-21.json")["responses"]["200"]["body"]
    assert set(job) >= set(example)
    ft_model = job["fine_tuned_model"]
    assert ft_model.startswith("gpt-4o-mini-2024-07-18.ft-") and len(ft_model.split(".ft-")[1]) == 32
    events = data.get(job_url + "/events").json()
    assert set(events) == set(contract("finetune-job-events.2024-10-21.json")["responses"]["200"]["body"])
    messages = [e["message"] for e in events["data"]]
    assert "Job started." in messages and messages[-1] == "Job succeeded."
    assert any(e["type"] == "metrics" for e in events["data"])
    page = data.get(job_url + "/events", params={"limit": 2}).json()
    assert len(page["data"]) == 2 and page["has_more"] is True
    rest = data.get(job_url + "/events", params={"after": page["data"][-1]["id"]}).json()["data"]
    assert page["data"] + rest == events["data"]

    # the fine-tuned model is now deployable with version "1", as Azure does it
    dep = account_path("rg-claims", ACCOUNT) + "/deployments/claims-ft-v2"
    r = arm.put(
        dep,
        json={
            "sku": {"name": "Standard", "capacity": 10},
            "properties": {"model": {"format": "OpenAI", "name": ft_model, "version": "1"}},
        },
    )
    assert r.status_code == 201, r.text
    emu.advance_clock(5)
    answer = data.post(
        chat_url(emu, ACCOUNT, "claims-ft-v2"),
        json={"messages": rag_messages("Claims close in 5 days.", "close?")},
    )
    assert answer.status_code == 200 and answer.json()["model"] == ft_model
    listed = data.get(emu.endpoint_for(ACCOUNT) + "openai/models").json()["data"]
    assert ft_model in [m["id"] for m in listed]


def test_job_ids_and_model_names_are_deterministic(emu: EmulatorHandle, data: httpx.Client) -> None:
    def run() -> tuple[str, str]:
        emu.reset()
        job_id = _create(emu, data, _upload(emu, data, _good_jsonl()))
        emu.advance_clock(3 * 3600)
        job = data.get(emu.endpoint_for(ACCOUNT) + f"openai/fine_tuning/jobs/{job_id}").json()
        return job_id, job["fine_tuned_model"]

    assert run() == run()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "at least 10"),  # 9 good rows
        (b"not json\n" * 12, "not valid JSON"),
        (b'{"prompt": "x", "completion": "y"}\n' * 12, "no 'messages'"),
        (
            (json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n").encode() * 12,
            "no assistant message",
        ),
    ],
)
def test_bad_training_data_fails_the_job(
    emu: EmulatorHandle, data: httpx.Client, content: bytes | None, reason: str
) -> None:
    payload = _good_jsonl(9) if content is None else content
    job_id = _create(emu, data, _upload(emu, data, payload))
    emu.advance_clock(3600)
    job = data.get(emu.endpoint_for(ACCOUNT) + f"openai/fine_tuning/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "jsonlValidationFailed"
    assert reason in job["error"]["message"]
    assert job["fine_tuned_model"] is None
    events = data.get(emu.endpoint_for(ACCOUNT) + f"openai/fine_tuning/jobs/{job_id}/events").json()["data"]
    assert events[-1]["level"] == "error"


def test_scenario_outcome_fail(data: httpx.Client) -> None:
    from modelshift.emulator.scenario import default_scenario_data
    from modelshift.emulator.testing import running_emulator

    scenario = default_scenario_data()
    scenario["profiles"]["gpt-4o-mini@2024-07-18"]["fine_tune"] = {"outcome": "fail", "duration_minutes": 10}
    with running_emulator(scenario, latency_scale=0.0) as emu2:
        job_id = _create(emu2, data, _upload(emu2, data, _good_jsonl()))
        emu2.advance_clock(3600)
        job = data.get(emu2.endpoint_for(ACCOUNT) + f"openai/fine_tuning/jobs/{job_id}").json()
        assert job["status"] == "failed" and job["error"]["code"] == "internalFailure"


def test_cancel_list_and_delete(emu: EmulatorHandle, data: httpx.Client) -> None:
    file_id = _upload(emu, data, _good_jsonl())
    first, second = _create(emu, data, file_id), _create(emu, data, file_id)
    jobs = emu.endpoint_for(ACCOUNT) + "openai/fine_tuning/jobs"
    listed = data.get(jobs, params={"limit": 1}).json()
    assert [j["id"] for j in listed["data"]] == [second] and listed["has_more"] is True
    assert [j["id"] for j in data.get(jobs, params={"after": second}).json()["data"]] == [first]
    emu.advance_clock(20 * 60)
    cancelled = data.post(f"{jobs}/{first}/cancel").json()
    assert cancelled["status"] == "cancelled"
    again = data.post(f"{jobs}/{first}/cancel")
    assert again.status_code == 400 and again.json()["error"]["code"] == "unexpectedEntityState"
    emu.advance_clock(5 * 3600)
    assert data.get(f"{jobs}/{first}").json()["status"] == "cancelled"
    assert data.delete(f"{jobs}/{second}").status_code == 204
    assert data.get(f"{jobs}/{second}").status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"model": "gpt-4o-mini-2024-07-18", "training_file": "file-missing"}, "notFound"),
        ({"model": "gpt-4o-2024-05-13", "training_file": "FILE"}, "invalidPayload"),  # no fineTune capability
        (
            {"model": "gpt-35-turbo-0125", "training_file": "FILE"},
            "invalidPayload",
        ),  # fine-tune retired 2026-01-31
        ({"training_file": "FILE"}, "invalidPayload"),
        ({"model": "gpt-4o-mini-2024-07-18", "training_file": "FILE", "suffix": "x" * 41}, "invalidPayload"),
    ],
)
def test_job_create_rejections(
    emu: EmulatorHandle, data: httpx.Client, body: dict[str, str], code: str
) -> None:
    file_id = _upload(emu, data, _good_jsonl())
    body = {k: (file_id if v == "FILE" else v) for k, v in body.items()}
    if body.get("model") == "gpt-35-turbo-0125":
        emu.advance_clock(17 * 86400)  # past 2026-01-31, the fine-tune retirement of gpt-35-turbo 0125
    r = data.post(emu.endpoint_for(ACCOUNT) + "openai/fine_tuning/jobs", json=body)
    assert r.status_code in (400, 404)
    assert r.json()["error"]["code"] == code
