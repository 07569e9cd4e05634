"""Fixtures for bundle tests: tiny bundles written into tmp dirs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundle_helpers import base_manifest, default_files, set_in

MakeBundle = Callable[..., Path]


@pytest.fixture
def make_bundle(tmp_path: Path) -> MakeBundle:
    """Write a bundle; returns its directory. Counter-named app dirs keep several bundles apart."""
    counter = iter(range(1000))

    def make(
        changes: dict[str, Any] | None = None,
        *,
        files: dict[str, str | bytes | None] | None = None,
        manifest: dict[str, Any] | None = None,
        yaml_text: str | None = None,
        where: Path | None = None,
        version_dir: str = "1.0.0",
    ) -> Path:
        app_dir = where if where is not None else tmp_path / f"apps{next(counter)}" / "support-chat"
        bundle_dir = app_dir / version_dir
        bundle_dir.mkdir(parents=True, exist_ok=True)
        data = copy.deepcopy(manifest if manifest is not None else base_manifest())
        for dotted, value in (changes or {}).items():
            set_in(data, dotted, value)
        all_files: dict[str, str | bytes | None] = {**default_files(), **(files or {})}
        for rel, content in all_files.items():
            if content is None:
                continue  # None in `files` removes a default file
            target = bundle_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        text = yaml_text if yaml_text is not None else yaml.safe_dump(data, sort_keys=False)
        (bundle_dir / "bundle.yaml").write_text(text, encoding="utf-8")
        return bundle_dir

    return make
