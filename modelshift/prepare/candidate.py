"""Compose the candidate bundle: the baseline with the target model, the new deployment, the plan's prompt
variant and (when re-chunked) the new index generation, written as a new bundle version and registered.

What changes against the baseline, and nothing else:

- ``model.name``/``version`` = the target, ``model.deployment`` = the side-by-side deployment,
  ``model.fine_tune.fine_tuned_model`` = the re-run's model (training files and hyperparameters unchanged);
- ``prompts``: the baseline's override for the target's family (the variant the plan picked) becomes the
  default system/user prompt; the other overrides stay;
- ``retrieval``: tokenizer, chunk sizes and ``index_generation`` of the new generation, when re-chunked.

Files inside the baseline's directory are copied to the same relative path; files outside it (``../shared``)
are referred to, not copied. The version is the baseline's with its minor bumped, skipping versions already
registered; because the walk over versions is deterministic, a re-run with the same inputs arrives at the
version it registered before, finds the same digest and writes nothing.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelshift import audit
from modelshift.bundle import Bundle, load_bundle
from modelshift.bundle.digest import compute_digest, sha256_hex
from modelshift.bundle.loader import BUNDLE_FILE
from modelshift.bundle.manifest import Manifest
from modelshift.bundle.refs import iter_refs, layout_path, ref_value, replace_refs, tree_key
from modelshift.errors import BundleValidationError, ConfigError, NotFoundError, StateError
from modelshift.platforms.base import ModelRef
from modelshift.prepare.baseline import bump_minor, load_baseline, version_dir
from modelshift.registry import register
from modelshift.store import RegisteredBundle, Store
from modelshift.store.bundles import bundle_subject

#: how many minor versions past the baseline the composer looks for a free one before giving up
MAX_VERSION_STEPS = 100


@dataclass(frozen=True)
class Rechunked:
    """The retrieval settings of a new index generation."""

    tokenizer: str
    chunk_tokens: int
    overlap_tokens: int
    index_generation: str


@dataclass(frozen=True)
class CandidateInputs:
    """What the prepare stage produced that the candidate names."""

    target: ModelRef
    deployment: str
    fine_tuned_model: str | None = None
    rechunked: Rechunked | None = None


@dataclass(frozen=True)
class CandidateResult:
    """The registered candidate: where it is, its digest, and whether this call registered or wrote it."""

    app: str
    version: str
    digest: str
    baseline_digest: str
    path: Path
    prompt_family: str | None
    #: registered by this call (False: the same content was already registered)
    created: bool
    #: the bundle directory was written by this call
    written: bool

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for reports and audit events."""
        return {
            "app": self.app,
            "version": self.version,
            "digest": self.digest,
            "baseline_digest": self.baseline_digest,
            "prompt_family": self.prompt_family,
            "created": self.created,
        }


@dataclass
class _Draft:
    """A candidate manifest (paths relative to its own directory) and the files it needs written there."""

    data: dict[str, Any]
    writes: dict[str, bytes] = field(default_factory=dict)
    #: logical key -> sha256 of every referenced file (trees flattened), for the digest
    hashes: dict[str, str] = field(default_factory=dict)
    prompt_family: str | None = None

    def digest_for(self, version: str) -> str:
        data = {**self.data, "version": version}
        try:
            # JSON mode: the draft is plain JSON data, which strict validation accepts as such
            manifest = Manifest.model_validate_json(json.dumps(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"candidate bundle of {data.get('app')}: {where}: {first['msg']}; check the plan's target "
                "and the prepare results"
            ) from None
        return compute_digest(manifest.canonical(), self.hashes)


def _inside(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (POSIX) when it lies inside it, else None."""
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else None


def _placed(draft: _Draft, wanted: str, fallback: str, content: bytes) -> str:
    """Where ``content`` goes in the candidate: ``wanted`` unless another file already took it."""
    for relpath in (wanted, fallback):
        if draft.writes.get(relpath, content) == content:
            draft.writes[relpath] = content
            return relpath
    raise StateError(f"candidate bundle: two different files both map to {wanted} and {fallback}")


def _reference(baseline: Bundle, ref_path: str, candidate_dir: Path) -> str:
    """The candidate's path to a file the baseline keeps outside its own directory (same target)."""
    target = (baseline.root / ref_path).resolve()
    return Path(os.path.relpath(target, candidate_dir.resolve())).as_posix()


def _draft(baseline: Bundle, inputs: CandidateInputs, candidate_dir: Path) -> _Draft:
    """The candidate manifest with every reference resolved to a copy or a relative path."""
    data = baseline.manifest.canonical()
    prompts = baseline.prompt_for(inputs.target.name)
    draft = _Draft(data=data, prompt_family=prompts.family)
    chosen = f"prompts.overrides.{prompts.family}" if prompts.family else None
    if prompts.family is not None:
        overrides = dict(data["prompts"].get("overrides") or {})
        overrides.pop(prompts.family)
        data["prompts"] = {**data["prompts"], "overrides": overrides}
    defaults: dict[str, bytes] = {}
    if chosen is not None:
        defaults["prompts.system"] = baseline.read_bytes(f"{chosen}.system")
        for key in (f"{chosen}.user_template", "prompts.user_template"):
            if key in baseline.files:
                defaults["prompts.user_template"] = baseline.read_bytes(key)
                break
        if data["prompts"].get("user_template") is None and "prompts.user_template" in defaults:
            # the override brings a user template the defaults lack: it becomes the default one
            data["prompts"] = {**data["prompts"], "user_template": "prompts/user.md"}
    paths: dict[str, str] = {}
    for ref in iter_refs(data):
        given = ref_value(data, ref)
        if ref.kind == "dir":
            paths[ref.key] = _tree(baseline, ref.key, given, candidate_dir, draft)
            continue
        content = defaults[ref.key] if ref.key in defaults else baseline.read_bytes(ref.key)
        inside = _inside(baseline.root / given, baseline.root)
        original = baseline.files.get(ref.key)
        if inside is None and original is not None and sha256_hex(content) == original.sha256:
            paths[ref.key] = _reference(baseline, given, candidate_dir)
        else:
            paths[ref.key] = _placed(draft, inside or layout_path(ref), layout_path(ref), content)
        draft.hashes[ref.key] = sha256_hex(content)
    draft.data = replace_refs(data, paths)
    return draft


def _tree(baseline: Bundle, key: str, given: str, candidate_dir: Path, draft: _Draft) -> str:
    """A referenced directory (the corpus): referred to when outside the baseline, else copied."""
    prefix = tree_key(key, "")
    members = {k: e for k, e in baseline.files.items() if k.startswith(prefix)}
    for member, entry in members.items():
        draft.hashes[member] = entry.sha256
    inside = _inside(baseline.root / given, baseline.root)
    if inside is None:
        return _reference(baseline, given, candidate_dir)
    for member in members:
        draft.writes[posixpath.join(inside, member[len(prefix) :])] = baseline.read_bytes(member)
    return inside


def _apply(draft: _Draft, inputs: CandidateInputs, baseline: Bundle) -> None:
    """Lay the target model, deployment, fine-tune and retrieval results over the draft manifest."""
    model = dict(draft.data["model"])
    model.update(name=inputs.target.name, deployment=inputs.deployment)
    if inputs.target.version is None:
        raise ConfigError(
            f"candidate of {baseline.app}: target {inputs.target.name} has no version; a bundle pins one"
        )
    model["version"] = inputs.target.version
    if model.get("fine_tune") is not None:
        if not inputs.fine_tuned_model:
            raise ConfigError(
                f"{baseline.yaml_path}: model.fine_tune: {baseline.app} is fine-tuned, so its candidate "
                "needs the fine-tuned model of the re-run; run the fine_tune stage first"
            )
        model["fine_tune"] = {**model["fine_tune"], "fine_tuned_model": inputs.fine_tuned_model}
    draft.data["model"] = model
    if inputs.rechunked is not None:
        if draft.data.get("retrieval") is None:
            raise ConfigError(
                f"{baseline.yaml_path}: retrieval: {baseline.app} has no retrieval section to re-chunk"
            )
        r = inputs.rechunked
        draft.data["retrieval"] = {
            **draft.data["retrieval"],
            "tokenizer": r.tokenizer,
            "chunk_tokens": r.chunk_tokens,
            "overlap_tokens": r.overlap_tokens,
            "index_generation": r.index_generation,
        }


def _registered_version(store: Store, app: str, version: str) -> RegisteredBundle | None:
    try:
        return store.get_bundle(app, version)
    except NotFoundError:
        return None


def _write(draft: _Draft, version: str, final: Path, header: str) -> Bundle:
    """Write the candidate into a sibling temp directory, check it loads with the expected digest, then
    move it into place (a crash leaves either nothing or a complete directory)."""
    expected = draft.digest_for(version)
    staging = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        for relpath, content in sorted(draft.writes.items()):
            target = staging / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        staging.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump({**draft.data, "version": version}, sort_keys=False, allow_unicode=True)
        (staging / BUNDLE_FILE).write_text(header + text, "utf-8")
        bundle = load_bundle(staging)
        if bundle.digest != expected:  # pragma: no cover - composing and loading must agree
            raise StateError(f"candidate {final}: wrote digest {bundle.digest}, composed {expected}")
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return load_bundle(final)


def _existing_dir(path: Path, expected: str) -> Bundle | bool | None:
    """A bundle directory already at ``path``: the bundle when it has ``expected``, False when it holds
    something else (skip this version), None when there is none."""
    if not path.exists():
        return None
    try:
        bundle = load_bundle(path)
    except BundleValidationError:
        return False
    return bundle if bundle.digest == expected else False


def compose_candidate(
    store: Store,
    *,
    baseline_digest: str,
    inputs: CandidateInputs,
    bundles_dir: Path,
    migration_id: str,
    actor: str,
) -> CandidateResult:
    """Write and register the candidate of ``baseline_digest`` for ``inputs`` (idempotent, audited as
    ``candidate.composed`` with both digests and the migration id)."""
    registered, baseline = load_baseline(store, baseline_digest, bundles_dir)
    app = registered.app
    # every candidate version is a sibling of the first, so relative references are the same for all
    draft = _draft(baseline, inputs, version_dir(bundles_dir, app, bump_minor(registered.version)))
    _apply(draft, inputs, baseline)
    for step in range(1, MAX_VERSION_STEPS + 1):
        version = bump_minor(registered.version, step)
        final = version_dir(bundles_dir, app, version)
        digest = draft.digest_for(version)
        taken = _registered_version(store, app, version)
        if taken is not None:
            if taken.digest == digest:
                return _finish(store, draft, taken, final, baseline_digest, migration_id, actor, False, False)
            continue
        on_disk = _existing_dir(final, digest)
        if on_disk is False:
            continue  # an unregistered directory with other content: never written over
        written = on_disk is None
        header = (
            f"# Candidate of {app}@{registered.version} ({baseline_digest}) for migration {migration_id},\n"
            f"# composed by modelshift: target {inputs.target}, deployment {inputs.deployment}.\n"
        )
        bundle = _write(draft, version, final, header) if on_disk is None else on_disk
        assert isinstance(bundle, Bundle)
        stored = register(store, bundle, actor=actor, migration_id=migration_id)
        return _finish(
            store, draft, stored.bundle, final, baseline_digest, migration_id, actor, stored.created, written
        )
    raise StateError(
        f"no free bundle version for the candidate of {app}@{registered.version} within "
        f"{MAX_VERSION_STEPS} minor versions; remove unregistered directories under {bundles_dir / app}"
    )


def _finish(
    store: Store,
    draft: _Draft,
    stored: RegisteredBundle,
    path: Path,
    baseline_digest: str,
    migration_id: str,
    actor: str,
    created: bool,
    written: bool,
) -> CandidateResult:
    result = CandidateResult(
        app=stored.app,
        version=stored.version,
        digest=stored.digest,
        baseline_digest=baseline_digest,
        path=path,
        prompt_family=draft.prompt_family,
        created=created,
        written=written,
    )
    already = any(
        e.reason == audit.Reason.CANDIDATE_COMPOSED and e.data.get("candidate_digest") == stored.digest
        for e in store.audit_events(migration_id=migration_id)
    )
    if not already:  # one composed event per migration and candidate, however often the stage re-runs
        store.append_audit(
            audit.Reason.CANDIDATE_COMPOSED,
            bundle_subject(stored.app, stored.version),
            _event(draft, result),
            actor=actor,
            migration_id=migration_id,
        )
    return result


def _event(draft: _Draft, result: CandidateResult) -> Mapping[str, Any]:
    model = draft.data["model"]
    retrieval = draft.data.get("retrieval") or {}
    return {
        "baseline_digest": result.baseline_digest,
        "candidate_digest": result.digest,
        "version": result.version,
        "model": f"{model['name']}@{model['version']}",
        "deployment": model.get("deployment"),
        "fine_tuned_model": (model.get("fine_tune") or {}).get("fine_tuned_model"),
        "prompt_family": result.prompt_family,
        "index_generation": retrieval.get("index_generation"),
        "created": result.created,
    }
