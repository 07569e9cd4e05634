"""Load and validate a bundle, reporting every problem at once; find bundles in a tree."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from modelshift.bundle import checks
from modelshift.bundle.core import Bundle, FileEntry
from modelshift.bundle.digest import compute_digest, sha256_hex
from modelshift.bundle.manifest import PLATFORMS, Manifest, check_relpath
from modelshift.bundle.refs import Ref, is_corpus_file, iter_refs, ref_value, tree_key
from modelshift.bundle.yamlsrc import YamlDocument, YamlSyntaxError
from modelshift.errors import BundleValidationError, NotFoundError

BUNDLE_FILE = "bundle.yaml"
#: findings reported per referenced file; a broken 100k-line file should not bury the other problems
MAX_FINDINGS_PER_FILE = 20


class _Report:
    """Collects ``"<file>: <field.path>: [line N: ]<message>"`` problems."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, file: str, field: str, message: str, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        self.problems.append(f"{file}: {field}: {where}{message}")

    def add_findings(self, file: str, field: str, findings: Sequence[checks.Finding]) -> None:
        for line, message in findings[:MAX_FINDINGS_PER_FILE]:
            self.add(file, field, message, line)
        if len(findings) > MAX_FINDINGS_PER_FILE:
            more = len(findings) - MAX_FINDINGS_PER_FILE
            self.add(file, field, f"... and {more} more problem(s) in this file")


def _yaml_path(path: Path) -> Path:
    if path.is_dir():
        return path / BUNDLE_FILE
    return path


def _allowed_keys(loc: Sequence[str | int]) -> list[str] | None:
    """The keys the schema allows at ``loc`` (the parent of an unknown key), for a helpful message."""
    current: Any = Manifest
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                if str(part) in PLATFORMS:
                    continue  # discriminator tag in the location: same class, all variants share fields
                return None
            current = info.annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        else:
            return None
        while get_origin(current) is not None and get_origin(current) not in (dict, list):
            models = [a for a in get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return None


def _schema_message(error: Any) -> tuple[tuple[str | int, ...], str]:
    """A readable (location, message) for one pydantic error."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind, msg, ctx = error["type"], error["msg"], error.get("ctx") or {}
    if kind == "bundle_rule":
        return (*loc, ctx["field"]), ctx["message"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return loc, f"unknown key {loc[-1]!r} (check the spelling){hint}"
    platform = f" for platform {loc[1]}" if len(loc) > 2 and loc[0] == "model" and loc[1] in PLATFORMS else ""
    if kind == "missing":
        return loc, f"required field is missing{platform}"
    if error.get("input", "") is None and kind.endswith("_type"):
        return loc, f"is null but required{platform}; set a value"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return (*loc, "platform"), f"platform must be one of {', '.join(PLATFORMS)}"
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        return loc, f'{msg}; quote the value, e.g. "{error["input"]}"'
    return loc, re.sub(r"^Value error, ", "", msg)


def _strip_tags(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    # pydantic puts the union tag in the path (model.azure-openai.account); users wrote model.account
    return tuple(p for i, p in enumerate(loc) if not (i == 1 and loc[0] == "model" and p in PLATFORMS))


def _validate_schema(doc: YamlDocument, file: str, report: _Report) -> Manifest | None:
    for dotted, first, again in doc.duplicate_keys():
        report.add(file, dotted, f"key repeats the one on line {first}; keep one", again)
    try:
        manifest = Manifest.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors():
            loc, message = _schema_message(error)
            loc = _strip_tags(loc)
            report.add(file, ".".join(str(p) for p in loc) or "(top level)", message, doc.line_of(loc))
        return None
    return manifest


class _FileScan:
    """Reads, hashes and checks every referenced file, recording problems against the right file."""

    def __init__(self, root: Path, display_root: Path, yaml_file: str, doc: YamlDocument, report: _Report):
        self.root, self.display_root, self.yaml_file = root, display_root, yaml_file
        self.doc, self.report = doc, report
        self.files: dict[str, FileEntry] = {}
        self.texts: dict[str, str] = {}
        self.corpus_files: set[str] | None = None

    def _shown(self, relpath: str) -> str:
        return os.path.normpath(self.display_root / relpath)

    def _read(self, ref: Ref, path: Path, shown: str) -> bytes | None:
        try:
            return path.read_bytes()
        except OSError as exc:
            self.report.add(shown, ref.key, f"cannot read ({exc.strerror}); fix its permissions")
            return None

    def _text(self, ref: Ref, data: bytes, shown: str) -> str | None:
        text, finding = checks.decode_text(data)
        if finding is not None:
            self.report.add_findings(shown, ref.key, [finding])
        return text

    def scan(self, data: Any) -> None:
        for ref in iter_refs(data):
            relpath = ref_value(data, ref)
            try:
                check_relpath(relpath)
            except ValueError:
                continue  # already reported by schema validation
            path = self.root / relpath
            if ref.kind == "dir":
                self._scan_dir(ref, relpath, path)
            else:
                self._scan_file(ref, relpath, path)

    def _missing(self, ref: Ref, relpath: str, what: str) -> None:
        line = self.doc.line_of(ref.loc)
        self.report.add(self.yaml_file, ref.key, f"{relpath}: {what} ({self._shown(relpath)})", line)

    def _scan_dir(self, ref: Ref, relpath: str, path: Path) -> None:
        if not path.exists():
            return self._missing(ref, relpath, "corpus directory not found; create it or fix the path")
        if not path.is_dir():
            return self._missing(
                ref, relpath, "is a file; corpus must be a directory of .md/.txt/.html files"
            )
        rels = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        rels = [r for r in rels if is_corpus_file(r)]
        if not rels:
            return self._missing(ref, relpath, "corpus directory has no .md, .txt or .html files")
        self.corpus_files = set(rels)
        for rel in rels:
            shown = self._shown(f"{relpath}/{rel}")
            data = self._read(ref, path / rel, shown)
            if data is not None:
                self._text(ref, data, shown)
                key = tree_key(ref.key, rel)
                self.files[key] = FileEntry(path / rel, sha256_hex(data), len(data))
        return None

    def _scan_file(self, ref: Ref, relpath: str, path: Path) -> None:
        if not path.exists():
            return self._missing(ref, relpath, "file not found; create it or fix the path")
        if path.is_dir():
            return self._missing(ref, relpath, "is a directory; name a file")
        shown = self._shown(relpath)
        data = self._read(ref, path, shown)
        if data is None:
            return None
        self.files[ref.key] = FileEntry(path, sha256_hex(data), len(data))
        text = self._text(ref, data, shown)
        if text is None:
            return None
        findings: list[checks.Finding] = []
        if ref.role == "prompt":
            self.texts[ref.key] = text
            if ref.loc[-1] == "user_template":
                findings = checks.template_findings(text)
        elif ref.role == "training":
            findings = checks.chat_jsonl_findings(text, checks.MIN_TRAINING_EXAMPLES)
        elif ref.role == "validation":
            findings = checks.chat_jsonl_findings(text, 1)
        elif ref.role == "dataset":
            findings, _ = checks.golden_findings(text, self.corpus_files)
        elif ref.role == "json_schema":
            findings = checks.json_schema_findings(text)
        self.report.add_findings(shown, ref.key, findings)
        return None


def load_bundle(path: Path) -> Bundle:
    """Load the bundle at ``path`` (its directory or its bundle.yaml) and validate it completely.

    Raises :class:`BundleValidationError` listing every problem as ``"<file>: <field.path>: <message>"``.
    """
    path = Path(path)
    yaml_path = _yaml_path(path)
    file = str(yaml_path)
    report = _Report()
    try:
        raw = yaml_path.read_bytes()
    except FileNotFoundError:
        raise BundleValidationError(
            [f"{file}: (bundle): not found; pass a bundle directory or its {BUNDLE_FILE}"]
        ) from None
    except OSError as exc:
        raise BundleValidationError([f"{file}: (bundle): cannot read ({exc.strerror})"]) from None
    text, finding = checks.decode_text(raw)
    if text is None:
        report.add_findings(file, "(syntax)", [finding] if finding else [])
        raise BundleValidationError(report.problems)
    try:
        doc = YamlDocument(text)
    except YamlSyntaxError as exc:
        report.add(file, "(syntax)", f"not valid YAML: {exc.message}", exc.line)
        raise BundleValidationError(report.problems) from None
    if not isinstance(doc.data, dict):
        report.add(file, "(top level)", "expected a mapping of keys (app, version, model, ...)", 1)
        raise BundleValidationError(report.problems)
    manifest = _validate_schema(doc, file, report)
    scan = _FileScan(yaml_path.parent.resolve(), yaml_path.parent, file, doc, report)
    scan.scan(doc.data)
    if report.problems or manifest is None:
        raise BundleValidationError(report.problems)
    digest = compute_digest(manifest.canonical(), {k: e.sha256 for k, e in scan.files.items()})
    return Bundle(yaml_path.parent.resolve(), manifest, digest, scan.files, scan.texts)


def _natural(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def discover_bundles(root: Path) -> list[Path]:
    """Every ``bundles/<app>/<version>/bundle.yaml`` under ``root`` (a checkout or its ``bundles/`` dir).

    ``root`` may also be one app's directory (``bundles/<app>``). Sorted by app, then version in natural
    order (1.2.0 before 1.10.0).
    """
    root = Path(root)
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such directory; pass a checkout or its bundles/ directory")
    base = root / "bundles" if (root / "bundles").is_dir() else root
    found = [p for p in base.glob(f"*/*/{BUNDLE_FILE}") if p.is_file()]
    if not found:
        found = [p for p in base.glob(f"*/{BUNDLE_FILE}") if p.is_file()]
    return sorted(found, key=lambda p: (p.parent.parent.name, _natural(p.parent.name)))
