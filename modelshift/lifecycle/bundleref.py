"""The view of a production bundle that assessment and planning need, from a loaded or a registered bundle."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from modelshift.bundle.manifest import Manifest
from modelshift.errors import ConfigError
from modelshift.platforms.base import AccountRef, ModelRef

if TYPE_CHECKING:
    from modelshift.bundle import Bundle
    from modelshift.store import RegisteredBundle


class BundleRef(BaseModel):
    """App, version, digest and manifest of one bundle; everything else is derived from the manifest."""

    model_config = ConfigDict(frozen=True)

    app: str
    version: str
    digest: str
    manifest: Manifest

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> BundleRef:
        """From a bundle loaded off disk."""
        return cls(app=bundle.app, version=bundle.version, digest=bundle.digest, manifest=bundle.manifest)

    @classmethod
    def from_registered(cls, bundle: RegisteredBundle) -> BundleRef:
        """From a bundle registered in the state store (its stored canonical manifest)."""
        try:
            # JSON mode: the stored manifest is plain JSON data, which strict validation accepts as such
            manifest = Manifest.model_validate_json(json.dumps(bundle.manifest))
        except ValidationError as exc:
            raise ConfigError(
                f"registered bundle {bundle.app}@{bundle.version} ({bundle.digest}) has a manifest this "
                f"modelshift cannot read ({exc.errors()[0]['msg']}); upgrade modelshift or re-register it"
            ) from None
        return cls(app=bundle.app, version=bundle.version, digest=bundle.digest, manifest=manifest)

    @property
    def platform(self) -> str:
        """``azure-openai``, ``azure-ml`` or ``openai-compatible``."""
        return self.manifest.model.platform

    @property
    def model(self) -> ModelRef:
        """The pinned (base) model of the bundle."""
        m = self.manifest.model
        return ModelRef(format=m.format, name=m.name, version=m.version)

    @property
    def fine_tuned(self) -> bool:
        """True when the bundle serves a fine-tune of its pinned model."""
        return self.manifest.model.fine_tune is not None

    @property
    def fine_tuned_model(self) -> str | None:
        """The fine-tuned model id the deployment should serve, when known."""
        ft = self.manifest.model.fine_tune
        return ft.fine_tuned_model if ft is not None else None

    @property
    def deployment(self) -> str | None:
        """The deployment name that serves the bundle."""
        return self.manifest.model.deployment

    @property
    def location(self) -> str | None:
        """The Azure location of the bundle's account (None off Azure OpenAI)."""
        return self.manifest.model.location

    @property
    def account(self) -> AccountRef | None:
        """The ARM account of an Azure OpenAI bundle (None for other platforms)."""
        m = self.manifest.model
        if m.platform != "azure-openai" or not (m.subscription and m.resource_group and m.account):
            return None
        return AccountRef(subscription_id=m.subscription, resource_group=m.resource_group, name=m.account)
