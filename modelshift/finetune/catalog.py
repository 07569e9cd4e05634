"""The fine-tuning re-run request of a catalog-model (MaaP) bundle: an Azure ML bundle whose model comes
from an Azure ML registry (Meta Llama, Mistral, Phi, ...), fine-tuned in the bundle's workspace.

It is a :class:`~modelshift.finetune.request.FineTuneRequest` with two differences, so
:class:`~modelshift.finetune.run.FineTuneRun` drives it unchanged:

- the job's base model is a registry asset id, ``azureml://registries/<registry>/models/<name>/versions/
  <version>`` (the target's name may be that id already; otherwise the registry comes from the argument or
  from the bundle's ``model.format`` for the publishers whose registry is known);
- the side-by-side deployment name fits Azure ML online deployments (3-32 characters).

The workspace plays the account's part (``model.account`` of an ``azure-ml`` bundle is the workspace) and
``model.endpoint`` is the managed online endpoint the fine-tuned model is deployed under.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from modelshift.bundle.core import Bundle
from modelshift.errors import ConfigError
from modelshift.finetune.request import SHORT_KEY, FineTuneRequest, HyperValue, bundle_fields
from modelshift.platforms.base import ModelRef

#: the Azure ML registry of the catalog's publishers (``model.format`` of the bundle -> registry)
REGISTRY_FOR_FORMAT: Final[Mapping[str, str]] = {
    "Meta": "azureml-meta",
    "Mistral AI": "azureml-mistral",
    "Microsoft": "azureml",
}
_REGISTRY_ID = re.compile(r"^azureml://registries/[^/]+/models/[^/]+/versions/[^/]+$")
_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


def is_catalog_bundle(bundle: Bundle) -> bool:
    """True for a bundle whose model is served from Azure ML (a catalog model, fine-tuned as MaaP)."""
    return bundle.manifest.model.platform == "azure-ml"


def registry_model_id(
    target: ModelRef, *, registry: str | None = None, model_format: str | None = None
) -> str:
    """The registry asset id of ``target``: its name when that already is one, else built from the
    registry (given, or known for ``model_format``), name and version."""
    if target.name.startswith("azureml://"):
        if not _REGISTRY_ID.match(target.name):
            raise ConfigError(
                f"fine-tuning target {target.name!r} is not a registry model id; write "
                "azureml://registries/<registry>/models/<name>/versions/<version>"
            )
        return target.name
    if not target.version:
        raise ConfigError(
            f"fine-tuning target {target.name} has no version; name the exact catalog model version "
            "(fine-tuning never floats to a default version)"
        )
    chosen = registry or REGISTRY_FOR_FORMAT.get(model_format or "")
    if chosen is None:
        raise ConfigError(
            f"fine-tuning target {target.name}@{target.version}: no Azure ML registry is known for model "
            f"format {model_format!r}; name the target by its registry id "
            "(azureml://registries/<registry>/models/<name>/versions/<version>)"
        )
    return f"azureml://registries/{chosen}/models/{target.name}/versions/{target.version}"


@dataclass(frozen=True)
class CatalogFineTuneRequest(FineTuneRequest):
    """A re-run of a catalog model's fine-tune in an Azure ML workspace."""

    #: the job's base model: ``azureml://registries/<registry>/models/<name>/versions/<version>``
    model_id: str = ""
    #: the managed online endpoint the fine-tuned model is deployed under
    endpoint: str = ""

    def __post_init__(self) -> None:
        if not self.migration_id:
            raise ConfigError(f"fine-tuning re-run of {self.app}: no migration id; pass the migration's id")
        if not self.training.strip():
            raise ConfigError(
                f"fine-tuning re-run of {self.app}: the training file is empty; "
                "fix model.fine_tune.training_file in bundle.yaml"
            )
        if not _REGISTRY_ID.match(self.model_id):
            raise ConfigError(
                f"fine-tuning re-run of {self.app}: {self.model_id!r} is not a registry model id"
            )
        if not self.endpoint:
            raise ConfigError(f"fine-tuning re-run of {self.app}: no online endpoint; set model.endpoint")

    @classmethod
    def from_catalog_bundle(
        cls,
        bundle: Bundle,
        *,
        target: ModelRef,
        migration_id: str,
        hyperparameters: Mapping[str, HyperValue | None] | None = None,
        registry: str | None = None,
    ) -> CatalogFineTuneRequest:
        """Read an ``azure-ml`` bundle's fine-tuning data, hyperparameters and workspace."""
        model = bundle.manifest.model
        where = f"{bundle.yaml_path}: model"
        if model.fine_tune is None:
            raise ConfigError(
                f"{where}.fine_tune: bundle {bundle.app}@{bundle.version} is not fine-tuned, so there is "
                "nothing to re-run; the plan should skip the fine-tuning stage for it"
            )
        missing = [
            f"model.{f}"
            for f in ("subscription", "resource_group", "account", "endpoint", "deployment")
            if not getattr(model, f)
        ]
        if model.platform != "azure-ml" or missing:
            raise ConfigError(
                f"{where}: catalog-model fine-tuning needs an azure-ml bundle with subscription, "
                f"resource_group, account (the workspace), endpoint and deployment; {bundle.app} is on "
                f"{model.platform}" + (f" and lacks {', '.join(missing)}" if missing else "")
            )
        assert model.subscription and model.resource_group and model.account and model.endpoint
        assert model.deployment
        return cls(
            **bundle_fields(bundle, target, migration_id, hyperparameters),
            model_id=registry_model_id(target, registry=registry, model_format=model.format),
            endpoint=model.endpoint,
        )

    @property
    def base_model(self) -> str:
        """The job's model: the registry asset id."""
        return self.model_id

    @property
    def deployment_name(self) -> str:
        """``<app head>-ft-<short key>``: at most 32 lower-case letters, digits and hyphens."""
        head = _NAME_UNSAFE.sub("-", self.app.split("-", 1)[0].lower()).strip("-")[:16] or "app"
        return f"{head}-ft-{self.key[:SHORT_KEY]}"
