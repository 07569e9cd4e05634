"""Files, fine-tuning jobs and fine-tuned models of one account, progressing on the scenario clock.

A job's status is computed from its timestamps whenever it is read (created -> pending -> running ->
succeeded|failed), so advancing the scenario clock moves every job forward without a background thread.
Training files are checked as Azure does at a basic level: JSONL in chat form with at least 10 examples.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelshift.emulator.scenario import FineTuneOutcome

MIN_EXAMPLES = 10
_CREATED_FOR = timedelta(seconds=30)


def _hex(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def unix(when: datetime) -> int:
    """Unix seconds of a datetime, as the data plane reports dates."""
    return int(when.timestamp())


@dataclass
class StoredFile:
    """An uploaded file."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: datetime

    def body(self) -> dict[str, Any]:
        """The data-plane File object."""
        return {
            "object": "file",
            "id": self.id,
            "bytes": len(self.content),
            "created_at": unix(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class FineTunedModel:
    """A model produced by fine-tuning (or present from the scenario)."""

    id: str
    base_model: str
    created_at: datetime
    job_id: str | None = None


def validate_training_jsonl(content: bytes) -> str | None:
    """None when ``content`` is usable chat-format JSONL with >= 10 examples, else what is wrong."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "the training file is not UTF-8 text"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"line {number} is not valid JSON ({exc.msg})"
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not messages:
            return f"line {number} has no 'messages' list"
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
                return f"line {number} has a message without a valid 'role'"
        if not any(m.get("role") == "assistant" for m in messages):
            return f"line {number} has no assistant message to learn from"
    if len(lines) < MIN_EXAMPLES:
        return f"the training file has {len(lines)} examples; at least {MIN_EXAMPLES} are required"
    return None


@dataclass
class Job:
    """A fine-tuning job; its status follows from its timestamps and the scenario clock."""

    id: str
    model: str
    training_file: str
    validation_file: str | None
    hyperparameters: dict[str, Any]
    suffix: str | None
    seed: int
    created_at: datetime
    outcome: FineTuneOutcome
    validation_error: str | None
    trained_tokens: int
    cancelled_at: datetime | None = None

    @property
    def started_at(self) -> datetime:
        """When the job leaves the queue and starts running."""
        return self.created_at + _CREATED_FOR + timedelta(minutes=self.outcome.queue_minutes)

    @property
    def finished_at(self) -> datetime:
        """When the job ends (validation failures end as soon as it starts)."""
        if self.validation_error is not None:
            return self.started_at
        return self.started_at + timedelta(minutes=self.outcome.duration_minutes)

    @property
    def fine_tuned_model(self) -> str:
        """Azure's naming: ``<base>.ft-<32 hex>``, deterministic per job."""
        suffix = f"-{self.suffix}" if self.suffix else ""
        return f"{self.model.split('.ft-')[0]}.ft-{_hex(self.id, 'model')}{suffix}"

    def status(self, now: datetime) -> str:
        """created | pending | running | succeeded | failed | cancelled at scenario time ``now``."""
        if self.cancelled_at is not None and self.cancelled_at < self.finished_at:
            return "cancelled"
        if now < self.created_at + _CREATED_FOR:
            return "created"
        if now < self.started_at:
            return "pending"
        if now < self.finished_at:
            return "running"
        if self.validation_error is not None or self.outcome.outcome == "fail":
            return "failed"
        return "succeeded"

    def body(self, now: datetime) -> dict[str, Any]:
        """The data-plane FineTuningJob object at scenario time ``now``."""
        status = self.status(now)
        out: dict[str, Any] = {
            "object": "fine_tuning.job",
            "id": self.id,
            "created_at": unix(self.created_at),
            "status": status,
            "model": self.model,
            "training_file": self.training_file,
            "validation_file": self.validation_file,
            "hyperparameters": self.hyperparameters,
            "suffix": self.suffix,
            "seed": self.seed,
            "fine_tuned_model": None,
            "result_files": [],
            "finished_at": None,
            "estimated_finish": unix(self.finished_at),
            "trained_tokens": None,
            "error": None,
        }
        if status == "succeeded":
            out["fine_tuned_model"] = self.fine_tuned_model
            out["result_files"] = [f"file-{_hex(self.id, 'results')}"]
            out["trained_tokens"] = self.trained_tokens
        if status in ("succeeded", "failed"):
            out["finished_at"] = unix(self.finished_at)
        if status == "cancelled" and self.cancelled_at is not None:
            out["finished_at"] = unix(self.cancelled_at)
        if status == "failed":
            if self.validation_error is not None:
                out["error"] = {
                    "code": "jsonlValidationFailed",
                    "message": f"Training file {self.training_file} failed validation: "
                    f"{self.validation_error}.",
                    "param": "training_file",
                }
            else:
                out["error"] = {
                    "code": "internalFailure",
                    "message": "The fine-tuning job failed (emulator scenario outcome: fail).",
                    "param": None,
                }
        return out

    def events(self, now: datetime) -> list[dict[str, Any]]:
        """Events that have happened by ``now``, oldest first (as the 2024-10-21 example lists them)."""
        timeline: list[tuple[datetime, str, str, str, dict[str, Any] | None]] = [
            (self.created_at, "info", "message", f"Created fine-tuning job: {self.id}", None),
            (
                self.created_at + _CREATED_FOR,
                "info",
                "message",
                "Job enqueued. Waiting for jobs ahead to complete.",
                None,
            ),
        ]
        if self.validation_error is not None:
            timeline.append(
                (
                    self.started_at,
                    "error",
                    "message",
                    f"Training file validation failed: {self.validation_error}",
                    None,
                )
            )
        else:
            timeline.append((self.started_at, "info", "message", "Job started.", None))
            steps = 4
            span = self.finished_at - self.started_at
            for i in range(1, steps):
                loss = round(2.0 / (1 + i), 4)
                data = {
                    "step": i * 10,
                    "train_loss": loss,
                    "train_mean_token_accuracy": round(0.5 + i * 0.1, 3),
                }
                timeline.append(
                    (
                        self.started_at + span * i / steps,
                        "info",
                        "metrics",
                        f"Step {i * 10}: training loss={loss}",
                        data,
                    )
                )
            if self.outcome.outcome == "fail":
                timeline.append((self.finished_at, "error", "message", "Job failed.", None))
            else:
                timeline.append((self.finished_at, "info", "message", "Job succeeded.", None))
        if self.cancelled_at is not None:
            timeline = [t for t in timeline if t[0] <= self.cancelled_at]
            timeline.append((self.cancelled_at, "info", "message", "Job cancelled.", None))
        out: list[dict[str, Any]] = []
        for index, (when, level, kind, message, extra) in enumerate(timeline):
            if when > now:
                continue
            event: dict[str, Any] = {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{_hex(self.id, str(index))}",
                "created_at": unix(when),
                "level": level,
                "message": message,
                "type": kind,
            }
            if extra is not None:
                event["data"] = extra
            out.append(event)
        return out


@dataclass
class FineTuneStore:
    """Files, jobs and fine-tuned models of one account."""

    files: dict[str, StoredFile] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    models: dict[str, FineTunedModel] = field(default_factory=dict)
    _counter: int = 0

    def next_id(self, prefix: str, *parts: str) -> str:
        """A deterministic id: the same sequence of creations gives the same ids run to run."""
        self._counter += 1
        return f"{prefix}-{_hex(prefix, str(self._counter), *parts)}"

    def add_existing_model(self, model_id: str, base_model: str, created_at: datetime) -> None:
        """Register a fine-tuned model that exists from the scenario's start."""
        self.models[model_id] = FineTunedModel(model_id, base_model, created_at)

    def settle(self, now: datetime) -> None:
        """Publish the models of jobs that have succeeded by ``now`` (so they become deployable)."""
        for job in self.jobs.values():
            if job.status(now) == "succeeded" and job.fine_tuned_model not in self.models:
                base = job.model.split(".ft-")[0]
                self.models[job.fine_tuned_model] = FineTunedModel(
                    job.fine_tuned_model, base, job.finished_at, job.id
                )
