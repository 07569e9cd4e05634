"""``modelshift bundle validate|digest|register|list|show|diff``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from modelshift.bundle import (
    Bundle,
    BundleContent,
    bundle_from_content,
    diff_bundles,
    discover_bundles,
    load_bundle,
)
from modelshift.cli._common import (
    EXIT_BAD_INPUT,
    JsonOption,
    command,
    console,
    err_console,
    open_store,
    print_json,
    settings,
)
from modelshift.errors import BundleValidationError, NotFoundError
from modelshift.registry import register as register_bundle

app = typer.Typer(help="Validate, digest, register, list, show and diff bundles.", no_args_is_help=True)


def _expand(paths: list[Path]) -> list[Path]:
    """A path may be a bundle dir, its bundle.yaml, or a tree of bundles (e.g. ``bundles/``)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir() and not (path / "bundle.yaml").exists():
            found = discover_bundles(path)
            out.extend(found if found else [path])
        else:
            out.append(path)
    return out


def _load_all(paths: list[Path]) -> tuple[list[Bundle], list[dict[str, Any]]]:
    bundles: list[Bundle] = []
    results: list[dict[str, Any]] = []
    for path in _expand(paths):
        try:
            bundle = load_bundle(path)
        except BundleValidationError as exc:
            results.append({"path": str(path), "ok": False, "problems": exc.problems})
            continue
        bundles.append(bundle)
        results.append(
            {
                "path": str(path),
                "ok": True,
                "app": bundle.app,
                "version": bundle.version,
                "digest": bundle.digest,
            }
        )
    return bundles, results


def _print_results(results: list[dict[str, Any]]) -> None:
    for row in results:
        if row["ok"]:
            console.print(f"[green]ok[/]  {row['app']}@{row['version']}  {row['digest']}  ({row['path']})")
        else:
            err_console.print(f"[red]invalid[/] {row['path']}: {len(row['problems'])} problem(s)")
            for problem in row["problems"]:
                err_console.print(f"  {problem}", markup=False, highlight=False)


@app.command()
@command
def validate(
    paths: list[Path] = typer.Argument(
        ..., help="Bundle directories, bundle.yaml files, or trees of bundles."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check bundles and report every problem at once as ``file: field.path: message``."""
    _, results = _load_all(paths)
    if as_json:
        print_json(results)
    else:
        _print_results(results)
    if not all(r["ok"] for r in results):
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
@command
def digest(
    path: Path = typer.Argument(..., help="A bundle directory or bundle.yaml."), as_json: bool = JsonOption
) -> None:
    """Print a bundle's digest (sha256 over its manifest and every file it references)."""
    bundle = load_bundle(path)
    if as_json:
        print_json({"app": bundle.app, "version": bundle.version, "digest": bundle.digest})
    else:
        console.print(bundle.digest, highlight=False)


@app.command()
@command
def register(
    paths: list[Path] = typer.Argument(
        ..., help="Bundle directories, bundle.yaml files, or trees of bundles."
    ),
    adopt: bool = typer.Option(
        False,
        "--adopt",
        help="Onboarding: mark each bundle as its app's production bundle (only when the app has none yet).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Register bundles in the state store (immutable: same version with other content is refused)."""
    bundles, results = _load_all(paths)
    if not all(r["ok"] for r in results):
        if as_json:
            print_json(results)
        else:
            _print_results(results)
            err_console.print("nothing was registered; fix the problems above and run again")
        raise typer.Exit(EXIT_BAD_INPUT)
    cfg = settings()
    store = open_store(cfg)
    out: list[dict[str, Any]] = []
    for bundle in bundles:
        done = register_bundle(store, bundle, actor=cfg.actor, adopt=adopt)
        out.append(
            {
                "app": bundle.app,
                "version": bundle.version,
                "digest": bundle.digest,
                "status": str(done.bundle.status),
                "result": "registered" if done.created else "unchanged",
            }
        )
    if as_json:
        print_json(out)
        return
    for row in out:
        console.print(
            f"{row['result']:<10} {row['app']}@{row['version']}  {row['status']:<10} {row['digest']}"
        )


@app.command("list")
@command
def list_(
    app_name: str | None = typer.Option(None, "--app", help="Only this app."),
    status: str | None = typer.Option(None, "--status", help="Only bundles in this status."),
    as_json: bool = JsonOption,
) -> None:
    """List registered bundles with their status."""
    store = open_store()
    rows: list[dict[str, Any]] = [
        {
            "app": b.app,
            "version": b.version,
            "status": str(b.status),
            "digest": b.digest,
            "model": _model_label(b.manifest),
            "registered_at": b.registered_at,
        }
        for b in store.list_bundles(app=app_name, status=status)
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("app", "version", "status", "model", "digest", "registered")
    for row in rows:
        table.add_row(
            row["app"],
            row["version"],
            row["status"],
            row["model"],
            row["digest"][:19],
            str(row["registered_at"])[:19],
        )
    console.print(table)


def _model_label(manifest: dict[str, Any]) -> str:
    model = manifest.get("model", {})
    return f"{model.get('name', '?')}@{model.get('version', '?')}"


def _split_ref(ref: str) -> tuple[str, str | None]:
    app_name, _, version = ref.partition("@")
    return app_name, (version or None)


@app.command()
@command
def show(ref: str = typer.Argument(..., metavar="APP[@VERSION]"), as_json: bool = JsonOption) -> None:
    """Show a registered bundle: status, digest, manifest and files (default: the app's production bundle)."""
    store = open_store()
    app_name, version = _split_ref(ref)
    bundle = store.get_bundle(app_name, version)
    data = {
        "app": bundle.app,
        "version": bundle.version,
        "status": str(bundle.status),
        "digest": bundle.digest,
        "registered_at": bundle.registered_at,
        "manifest": bundle.manifest,
        "files": bundle.files,
    }
    if as_json:
        print_json(data)
        return
    import yaml

    console.print(f"[bold]{bundle.app}@{bundle.version}[/]  {bundle.status}  {bundle.digest}")
    console.print(yaml.safe_dump(bundle.manifest, sort_keys=False), markup=False, highlight=False)
    table = Table("file", "sha256")
    for key, sha in sorted(bundle.files.items()):
        table.add_row(key, sha[:16])
    console.print(table)


def _resolve(ref: str, workdir: Path) -> Bundle:
    """A bundle from a path, else from the store as APP@VERSION (materialised into ``workdir``)."""
    path = Path(ref)
    if path.exists():
        return load_bundle(path)
    if "@" not in ref:
        raise NotFoundError(f"{ref}: no such bundle path; to diff registered bundles write APP@VERSION")
    store = open_store()
    app_name, version = _split_ref(ref)
    reg = store.get_bundle(app_name, version)
    content = BundleContent(manifest=reg.manifest, files=reg.files)
    return bundle_from_content(
        content, workdir / f"{reg.app}-{reg.version}", digest=reg.digest, blobs=store.bundle_blobs(reg.digest)
    )


@app.command()
@command
def diff(
    a: str = typer.Argument(..., metavar="A", help="Bundle path or APP@VERSION."),
    b: str = typer.Argument(..., metavar="B", help="Bundle path or APP@VERSION."),
    as_json: bool = JsonOption,
) -> None:
    """Field-level differences between two bundles, with a unified diff of changed prompts."""
    with tempfile.TemporaryDirectory(prefix="modelshift-diff-") as tmp:
        result = diff_bundles(_resolve(a, Path(tmp)), _resolve(b, Path(tmp)))
    if as_json:
        print_json(result.to_json())
    else:
        console.print(result.render_text(), markup=False, highlight=False)
