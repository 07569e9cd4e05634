"""``modelshift eval --baseline BUNDLE --candidate BUNDLE [--dataset F] [--json]``: the evaluation gate alone.

BUNDLE is a bundle directory (or its ``bundle.yaml``) or ``APP@VERSION`` from the state store. Both bundles
run on the platform their manifests name (the emulator when MODELSHIFT_ARM_URL points at it, else Azure),
through the runner (rate-limit aware, baseline cached in the store), then the gate compares them.

Exit codes: 0 the gate passed; 1 it failed OR was inconclusive (too few items for the confidence asked:
an inconclusive gate did not pass, so nothing may go on to a canary); 2 bad input.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from modelshift.bundle import Bundle, load_bundle
from modelshift.bundle.content import BundleContent, bundle_from_content
from modelshift.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    JsonOption,
    command,
    console,
    err_console,
    open_store,
    print_json,
    settings,
)
from modelshift.errors import ConfigError
from modelshift.evaluation import runner as runner_mod
from modelshift.evaluation.dataset import load_dataset
from modelshift.evaluation.pair import PairResult, default_workdir, evaluate_pair
from modelshift.evaluation.pricing import price_table_from_settings
from modelshift.orchestration.connect import EndpointDirectory
from modelshift.platforms import azure
from modelshift.settings import Settings
from modelshift.store import Store

#: seconds an HTTP call to the model may take before it counts as a transient failure
HTTP_TIMEOUT_S = 120.0


def resolve_bundle(ref: str, store: Store, cfg: Settings, option: str) -> Bundle:
    """A bundle from a path (directory or bundle.yaml) or APP@VERSION in the store."""
    path = Path(ref)
    if path.exists():
        return load_bundle(path.parent if path.name == "bundle.yaml" else path)
    if "@" not in ref:
        raise ConfigError(
            f"{option} {ref!r} is neither a bundle directory nor APP@VERSION; "
            "give a path such as bundles/support-chat/1.0.0 or support-chat@1.0.0"
        )
    app, version = ref.split("@", 1)
    registered = store.get_bundle(app, version)
    content = BundleContent(manifest=registered.manifest, files=registered.files)
    workdir = default_workdir(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix=f"{app}-{version}-", dir=workdir))
    return bundle_from_content(
        content, dest, digest=registered.digest, blobs=store.bundle_blobs(registered.digest)
    )


def _side(run: runner_mod.BundleRun, bundle: Bundle) -> dict[str, Any]:
    # a cached run made no calls now; its stored stats describe the run that measured it
    stats = runner_mod.RunStats() if run.cached else run.stats
    return {
        "bundle": f"{bundle.app}@{bundle.version}",
        "digest": bundle.digest,
        "deployment": bundle.manifest.model.deployment,
        "model": f"{bundle.manifest.model.name}@{bundle.manifest.model.version}",
        "items": len(run.outcomes),
        "failed": [{"item_id": o.item_id, "error": o.error_kind} for o in run.failed],
        "cached": run.cached,
        "requests": stats.requests,
        "throttled": stats.throttled,
        "retries": stats.retries,
        "wall_seconds": round(stats.wall_seconds, 3),
    }


def result_json(result: PairResult, baseline: Bundle, candidate: Bundle) -> dict[str, Any]:
    """The machine-readable outcome of ``modelshift eval --json``."""
    return {
        "verdict": result.report.verdict.value,
        "passed": result.report.passed,
        "dataset": {"path": str(result.dataset.path), "digest": result.dataset.digest},
        "baseline": _side(result.baseline, baseline),
        "candidate": _side(result.candidate, candidate),
        "record_id": result.record.id if result.record is not None else None,
        "not_recorded": result.not_recorded,
        "report": result.report.model_dump(mode="json"),
    }


def _print(result: PairResult, baseline: Bundle, candidate: Bundle) -> None:
    for label, run, bundle in (
        ("baseline", result.baseline, baseline),
        ("candidate", result.candidate, candidate),
    ):
        side = _side(run, bundle)
        source = "cached" if run.cached else f"{side['requests']} requests, {side['throttled']} throttled"
        console.print(
            f"{label:9} {side['bundle']} on {side['deployment']} ({side['model']}): "
            f"{side['items']} items, {len(side['failed'])} failed, {source}",
            markup=False,
            highlight=False,
        )
    console.print(result.report.render_text(), markup=False, highlight=False, soft_wrap=True)
    if result.record is not None:
        console.print(f"evaluation record {result.record.id} written", highlight=False)
    else:
        console.print(f"not recorded: {result.not_recorded}", markup=False, highlight=False)


async def _run(
    baseline: Bundle, candidate: Bundle, dataset: Path | None, store: Store, cfg: Settings, show: bool
) -> PairResult:
    data = load_dataset(dataset) if dataset is not None else None
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not show,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(p: runner_mod.Progress) -> None:
        if p.bundle not in tasks:
            tasks[p.bundle] = bar.add_task(p.bundle, total=p.total)
        bar.update(tasks[p.bundle], completed=p.done)

    with httpx.Client(timeout=HTTP_TIMEOUT_S) as sync_client, bar:
        directory = EndpointDirectory(azure.arm_client(cfg, client=sync_client))
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            return await evaluate_pair(
                baseline,
                candidate,
                settings=cfg,
                directory=directory,
                client=client,
                dataset=data,
                store=store,
                progress=on_progress,
                prices=price_table_from_settings(cfg),
            )


def eval_command(
    baseline: str = typer.Option(..., "--baseline", help="Baseline bundle: a directory or APP@VERSION."),
    candidate: str = typer.Option(..., "--candidate", help="Candidate bundle: a directory or APP@VERSION."),
    dataset: Path | None = typer.Option(None, "--dataset", help="Golden JSONL (default: the candidate's)."),
    as_json: bool = JsonOption,
) -> None:
    """Evaluate CANDIDATE against BASELINE on the same golden data; exit 1 unless the gate passes."""
    cfg = settings()
    with open_store(cfg) as store:
        base = resolve_bundle(baseline, store, cfg, "--baseline")
        cand = resolve_bundle(candidate, store, cfg, "--candidate")
        result = asyncio.run(_run(base, cand, dataset, store, cfg, show=not as_json))
    if as_json:
        print_json(result_json(result, base, cand))
    else:
        _print(result, base, cand)
    raise typer.Exit(EXIT_OK if result.report.passed else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the CLI."""
    app.command("eval")(command(eval_command))
