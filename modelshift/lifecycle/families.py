"""The model-family table that scope classification reads: a default shipped with the package, extendable.

The default lives in ``families.yaml`` next to this module. A user adds or overrides families in a YAML file
named by ``MODELSHIFT_FAMILIES_FILE`` (same shape, ``families: {name: {...}}``); a family present in both is
merged field by field, the user's fields winning. The merged table is validated as a whole, so a user's
``variant_of`` may point at a default family and every problem is reported at once with file and field.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelshift.errors import ConfigError

DEFAULT_SOURCE = "modelshift/lifecycle/families.yaml"


class Family(BaseModel):
    """One model family: which names it covers and how it relates to other families."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    provider: str = Field(min_length=1)
    kind: Literal["general", "specialized"] = "general"
    line: str = Field(min_length=1)
    major: int = Field(ge=0)
    generation: str = Field(min_length=1)
    variant_of: str | None = None
    successor_of: str | None = None
    match: tuple[str, ...] = Field(min_length=1)

    @property
    def root(self) -> str:
        """The family a variant belongs to (itself when it is no variant)."""
        return self.variant_of or self.name


class FamilyTable(BaseModel):
    """The validated, merged family table; :meth:`family_of` maps a model name to its family."""

    model_config = ConfigDict(frozen=True)

    families: dict[str, Family]
    sources: tuple[str, ...] = ()

    def family_of(self, model_name: str) -> Family | None:
        """The family whose longest ``match`` prefix starts ``model_name`` (case-insensitive), or None."""
        key = model_name.strip().lower().split(".ft-", 1)[0]  # a fine-tuned model belongs to its base
        best: tuple[int, Family] | None = None
        for family in self.families.values():
            for prefix in family.match:
                p = prefix.lower()
                if key.startswith(p) and (best is None or len(p) > best[0]):
                    best = (len(p), family)
        return best[1] if best else None

    def get(self, name: str) -> Family | None:
        """The family called ``name``."""
        return self.families.get(name)


def _read_yaml(text: str, source: str) -> dict[str, dict[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{source}: not valid YAML ({exc}); fix the file or unset MODELSHIFT_FAMILIES_FILE"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("families", {}), dict):
        raise ConfigError(
            f"{source}: families: expected a mapping `families: {{NAME: {{provider: ..., match: [...]}}}}`"
        )
    unknown = sorted(set(data) - {"families"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; only `families` is read")
    families = data.get("families") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, entry in families.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: families.{name}: expected a mapping of fields, got {entry!r}")
        out[str(name)] = dict(entry)
    return out


def _default_entries() -> dict[str, dict[str, Any]]:
    text = resources.files("modelshift.lifecycle").joinpath("families.yaml").read_text("utf-8")
    return _read_yaml(text, DEFAULT_SOURCE)


def _validate(entries: dict[str, tuple[dict[str, Any], str]]) -> dict[str, Family]:
    problems: list[str] = []
    families: dict[str, Family] = {}
    for name, (entry, source) in entries.items():
        try:
            families[name] = Family.model_validate({**entry, "name": name})
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                problems.append(f"{source}: families.{name}.{field}: {err['msg']}")
    owners: dict[str, str] = {}
    for name, family in families.items():
        source = entries[name][1]
        for ref_field in ("variant_of", "successor_of"):
            ref = getattr(family, ref_field)
            if ref is not None and ref not in families:
                problems.append(f"{source}: families.{name}.{ref_field}: names unknown family {ref!r}")
            if ref == name:
                problems.append(f"{source}: families.{name}.{ref_field}: a family cannot refer to itself")
        for prefix in family.match:
            key = prefix.strip().lower()
            if not key:
                problems.append(f"{source}: families.{name}.match: an empty prefix matches every model")
            elif key in owners and owners[key] != name:
                problems.append(
                    f"{source}: families.{name}.match: prefix {prefix!r} is also claimed by family "
                    f"{owners[key]!r}; remove it from one of them"
                )
            owners.setdefault(key, name)
    if problems:
        raise ConfigError(
            "invalid model-family table:\n"
            + "\n".join(f"  {p}" for p in problems)
            + "\nfix the file named above"
        )
    return families


def load_families(path: Path | str | None = None) -> FamilyTable:
    """The default family table, with the user's file (``MODELSHIFT_FAMILIES_FILE``) merged over it."""
    entries: dict[str, tuple[dict[str, Any], str]] = {
        name: (entry, DEFAULT_SOURCE) for name, entry in _default_entries().items()
    }
    sources = [DEFAULT_SOURCE]
    if path is not None:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{file}: cannot read the model-family file ({exc.strerror}); "
                "check MODELSHIFT_FAMILIES_FILE or unset it to use the default table"
            ) from None
        for name, entry in _read_yaml(text, str(file)).items():
            base = entries[name][0] if name in entries else {}
            entries[name] = ({**base, **entry}, str(file))
        sources.append(str(file))
    return FamilyTable(families=_validate(entries), sources=tuple(sources))
