"""A loaded, validated bundle: manifest, digest, referenced files and the prompts it pins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from modelshift.bundle.digest import sha256_hex
from modelshift.bundle.manifest import Manifest
from modelshift.errors import ConfigError

if TYPE_CHECKING:
    from modelshift.bundle.content import BundleContent


class FileEntry(NamedTuple):
    """One referenced file as it was when the bundle was loaded."""

    path: Path
    sha256: str
    size: int


class PromptSet(NamedTuple):
    """The prompts that go out with a model call; ``family`` is the override used, None for the defaults."""

    system: str
    user_template: str | None
    family: str | None = None


@dataclass(frozen=True, eq=False)
class Bundle:
    """One tested combination, loaded from disk with :func:`modelshift.bundle.load_bundle`.

    Prompt texts are read once at load time and kept, so the prompt that goes out is always the one the
    digest covers even if the file changes on disk afterwards.
    """

    root: Path
    manifest: Manifest
    digest: str
    files: Mapping[str, FileEntry]
    texts: Mapping[str, str] = field(repr=False)

    def __post_init__(self) -> None:
        # Read-only views: a frozen dataclass alone would still let callers mutate the dicts.
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        object.__setattr__(self, "texts", MappingProxyType(dict(self.texts)))

    def __eq__(self, other: object) -> bool:
        # DESIGN §1: two bundles with the same digest are the same thing, wherever they sit on disk
        return isinstance(other, Bundle) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def app(self) -> str:
        """The app this bundle serves."""
        return self.manifest.app

    @property
    def version(self) -> str:
        """The bundle version (unique per app)."""
        return self.manifest.version

    @property
    def yaml_path(self) -> Path:
        """The ``bundle.yaml`` this bundle was loaded from."""
        return self.root / "bundle.yaml"

    def prompt_for(self, model_name: str | None = None) -> PromptSet:
        """Prompts for ``model_name`` (default: this bundle's model): the longest matching family override.

        An override without its own ``user_template`` keeps the default user template.
        """
        name = self.manifest.model.name if model_name is None else model_name
        prompts = self.manifest.prompts
        default_user = self.texts.get("prompts.user_template")
        matches = [family for family in prompts.overrides if name.startswith(family)]
        if not matches:
            return PromptSet(self.texts["prompts.system"], default_user)
        family = max(matches, key=len)
        base = f"prompts.overrides.{family}"
        return PromptSet(
            self.texts[f"{base}.system"], self.texts.get(f"{base}.user_template", default_user), family
        )

    def read_bytes(self, key: str) -> bytes:
        """The bytes of referenced file ``key``, refused if the file changed since the bundle was loaded."""
        entry = self.files[key]
        try:
            data = entry.path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{entry.path}: {key}: cannot read ({exc.strerror}); restore the file or reload the bundle"
            ) from None
        if sha256_hex(data) != entry.sha256:
            raise ConfigError(
                f"{entry.path}: {key}: changed since bundle {self.app}@{self.version} was loaded "
                f"(digest {self.digest}); reload it, and give changed content a new bundle version"
            )
        return data

    def blobs(self) -> dict[str, bytes]:
        """Every referenced file's bytes by sha256 (content-addressed: equal files appear once)."""
        out: dict[str, bytes] = {}
        for key, entry in self.files.items():
            if entry.sha256 not in out:
                out[entry.sha256] = self.read_bytes(key)
        return out

    def content(self) -> BundleContent:
        """The self-contained form for the state store (see :class:`modelshift.bundle.BundleContent`)."""
        from modelshift.bundle.content import content_of

        return content_of(self)
