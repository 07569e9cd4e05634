"""What a fine-tuning re-run needs, read from a bundle, and the names derived from it.

Everything here is pure: the idempotency key, the job suffix, the file names and the side-by-side
deployment name all follow from the request alone, so a re-run after a crash computes the same ones and
finds what the first run created instead of creating it again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from modelshift.bundle.core import Bundle
from modelshift.errors import ConfigError
from modelshift.platforms.base import AccountRef, ModelRef

HyperValue = int | float | str
#: Azure: a job suffix is at most 40 of ``[a-zA-Z0-9_-]``; a deployment name at most 64 characters
MAX_SUFFIX: Final = 40
MAX_DEPLOYMENT_NAME: Final = 64
#: hex digits of the key that go into names: enough to tell re-runs apart, short enough for Azure's limits
SHORT_KEY: Final = 8
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_SUFFIX_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def base_model_id(target: ModelRef) -> str:
    """Azure's base id for a job's model: ``gpt-4o-mini`` @ ``2024-07-18`` → ``gpt-4o-mini-2024-07-18``."""
    if not target.version:
        raise ConfigError(
            f"fine-tuning target {target.name} has no version; name the exact base model version "
            "(e.g. --target gpt-4o-mini@2024-07-18), fine-tuning never floats to a default version"
        )
    return f"{target.name}-{target.version}"


def merge_hyperparameters(
    bundle: Mapping[str, HyperValue | None], adjusted: Mapping[str, HyperValue | None] | None
) -> dict[str, HyperValue]:
    """The bundle's hyperparameters with the plan's adjustments laid over them; None means "let the
    platform choose" and drops the key."""
    merged: dict[str, HyperValue | None] = {**bundle, **(adjusted or {})}
    out: dict[str, HyperValue] = {}
    for name, value in sorted(merged.items()):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(
                f"hyperparameter {name}={value!r} is not a number or string; "
                "fix model.fine_tune.hyperparameters in bundle.yaml or the plan's adjustment"
            )
        out[name] = value
    return out


def bundle_fields(
    bundle: Bundle,
    target: ModelRef,
    migration_id: str,
    hyperparameters: Mapping[str, HyperValue | None] | None,
) -> dict[str, Any]:
    """What every fine-tune re-run request reads from its bundle: the training/validation bytes, the
    hyperparameters with the plan's adjustments laid over, suffix, seed, account and baseline deployment.

    The caller has checked that the bundle is fine-tuned and names subscription, resource group, account
    and deployment (the checks and their messages differ per platform).
    """
    model = bundle.manifest.model
    ft = model.fine_tune
    assert ft is not None and model.subscription and model.resource_group and model.account
    validation = (
        bundle.read_bytes("model.fine_tune.validation_file") if ft.validation_file is not None else None
    )
    return {
        "app": bundle.app,
        "migration_id": migration_id,
        "target": target,
        "training": bundle.read_bytes("model.fine_tune.training_file"),
        "validation": validation,
        "hyperparameters": merge_hyperparameters(ft.hyperparameters.model_dump(), hyperparameters),
        "suffix": ft.suffix,
        "seed": ft.seed,
        "account": AccountRef(
            subscription_id=model.subscription, resource_group=model.resource_group, name=model.account
        ),
        "baseline_deployment": model.deployment,
        "baseline_sku": (model.sku.name, model.sku.capacity) if model.sku else None,
    }


@dataclass(frozen=True)
class FineTuneRequest:
    """One re-run: an app's training data and hyperparameters, a target base model, a migration."""

    app: str
    migration_id: str
    target: ModelRef
    training: bytes = field(repr=False)
    validation: bytes | None = field(repr=False)
    hyperparameters: Mapping[str, HyperValue]
    #: the bundle's suffix (the job's suffix adds a short key so a lost create is found exactly)
    suffix: str | None
    seed: int | None
    account: AccountRef
    baseline_deployment: str
    #: SKU name and capacity from bundle.yaml, used when the live baseline deployment cannot be read
    baseline_sku: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if not self.migration_id:
            raise ConfigError(f"fine-tuning re-run of {self.app}: no migration id; pass the migration's id")
        if not self.training.strip():
            raise ConfigError(
                f"fine-tuning re-run of {self.app}: the training file is empty; "
                "fix model.fine_tune.training_file in bundle.yaml"
            )
        base_model_id(self.target)  # refuses a target without a version, early

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        *,
        target: ModelRef,
        migration_id: str,
        hyperparameters: Mapping[str, HyperValue | None] | None = None,
    ) -> FineTuneRequest:
        """Read the training/validation bytes, hyperparameters, suffix, seed and baseline deployment of an
        Azure OpenAI bundle; ``hyperparameters`` are the plan's adjustments, laid over the bundle's."""
        model = bundle.manifest.model
        where = f"{bundle.yaml_path}: model"
        if model.fine_tune is None:
            raise ConfigError(
                f"{where}.fine_tune: bundle {bundle.app}@{bundle.version} is not fine-tuned, so there is "
                "nothing to re-run; the plan should skip the fine-tuning stage for it"
            )
        if (
            model.platform != "azure-openai"
            or not model.subscription
            or not model.resource_group
            or not model.account
            or not model.deployment
        ):
            raise ConfigError(
                f"{where}.platform: fine-tuning re-runs support azure-openai bundles (with subscription, "
                f"resource_group, account and deployment); {bundle.app} is on {model.platform}"
            )
        return cls(**bundle_fields(bundle, target, migration_id, hyperparameters))

    # ------------------------------------------------------------------------------ derived names

    @property
    def base_model(self) -> str:
        """The job's ``model``: Azure's base id of the target."""
        return base_model_id(self.target)

    @property
    def training_sha256(self) -> str:
        """sha256 of the training bytes."""
        return sha256_hex(self.training)

    @property
    def validation_sha256(self) -> str | None:
        """sha256 of the validation bytes, None without a validation file."""
        return None if self.validation is None else sha256_hex(self.validation)

    @property
    def key(self) -> str:
        """The idempotency key: sha256 over (migration id, target, data digests, hyperparameters)."""
        canonical = json.dumps(
            [
                self.migration_id,
                self.base_model,
                self.training_sha256,
                self.validation_sha256,
                sorted(self.hyperparameters.items()),
            ],
            separators=(",", ":"),
        )
        return sha256_hex(canonical.encode("utf-8"))

    @property
    def job_suffix(self) -> str:
        """The job's suffix: the bundle's (or the app name) plus a short key, at most 40 characters."""
        head = _SUFFIX_UNSAFE.sub("-", self.suffix or self.app).strip("-") or "ft"
        return f"{head[: MAX_SUFFIX - SHORT_KEY - 1]}-{self.key[:SHORT_KEY]}"

    def filename(self, role: str) -> str:
        """Upload name of the ``training`` or ``validation`` file: app, role and content digest, so a lost
        upload is found again by name and the same bytes are never uploaded twice."""
        digest = self.training_sha256 if role == "training" else self.validation_sha256
        return f"{self.app}-{role}-{(digest or '')[:16]}.jsonl"

    @property
    def deployment_name(self) -> str:
        """The side-by-side deployment: ``<app head>-ft-<target without gpt->-<short key>``, ≤ 64 chars."""
        app_head = self.app.split("-", 1)[0]
        target = self.base_model.removeprefix("gpt-")
        tail = f"-{self.key[:SHORT_KEY]}"
        head = _NAME_UNSAFE.sub("-", f"{app_head}-ft-{target}")
        return head[: MAX_DEPLOYMENT_NAME - len(tail)].rstrip("-.") + tail
