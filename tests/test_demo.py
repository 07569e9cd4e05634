"""``modelshift demo``: the whole migration DAG end to end on the emulator, and a demo whose outcome fails.

The end-to-end runs start ``modelshift demo --json`` as a separate process, as a user does (a fresh Prefect
home inside the modelshift home, its own emulator and gateway), and check every promised outcome from the
JSON: not just the exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from modelshift.bundle import load_bundle
from modelshift.cli import app
from modelshift.demo import EXPECTED, DemoSettings, copy_bundles, demo_scenario
from modelshift.emulator.scenario import default_scenario_data, parse_scenario

REPO = Path(__file__).resolve().parents[1]


def _demo(tmp_path: Path, *args: str, timeout: float = 900) -> tuple[int, dict[str, Any], str]:
    """Run ``modelshift demo --json ARGS`` in a fresh process with its home in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSHIFT_", "PREFECT_"))}
    env |= {"MODELSHIFT_HOME": str(tmp_path / "home"), "MODELSHIFT_BUNDLES_DIR": str(REPO / "bundles")}
    proc = subprocess.run(
        [sys.executable, "-c", "from modelshift.cli import main; main()", "demo", "--json", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"demo printed no JSON (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc.returncode, out, proc.stderr


def _digest(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("sha256:") and len(value) == 71


@pytest.mark.slow
def test_the_demo_shows_every_outcome(tmp_path: Path) -> None:
    code, out, err = _demo(tmp_path)
    assert code == 0, json.dumps(out.get("failures"), indent=1) + err[-3000:]
    assert out["ok"] is True and out["failures"] == []
    home = (tmp_path / "home").resolve()
    assert out["state_dir"] == str(home / "demo")
    # Prefect's local API kept its database inside the modelshift home
    assert (home / "prefect").is_dir()
    steps = {s["name"]: s for s in out["steps"]}
    assert list(steps) == ["register", "scan", "audit"]
    assert {b["status"] for b in steps["register"]["details"]["bundles"]} == {"production"}
    # (1) the retirement scan found the retiring apps and planned each one's migration
    planned = steps["scan"]["details"]["planned"]
    assert sorted(planned) == ["backup-faq", "hr-handbook", "support-chat"]
    assert planned["support-chat"]["target"] == "gpt-4o@2024-11-20"
    assert "rechunk" in planned["hr-handbook"]["stages"]
    assert all(p["phase"] == "planned" for p in planned.values())
    migrations = {m["app"]: m for m in out["migrations"]}
    assert list(migrations) == list(EXPECTED)
    for name, row in migrations.items():
        assert row["ok"] is True and row["problems"] == [], (name, row["problems"])
        assert _digest(row["from_digest"]) and _digest(row["to_digest"])
        assert row["from_digest"] != row["to_digest"]
        assert row["to_model"] == EXPECTED[name].target
        assert row["gate_verdict"] == "pass" and row["gate_passed"] is True
        assert {m["name"] for m in row["gate_metrics"]} >= {"answer_f1", "groundedness", "latency_p95_ms"}
        assert [
            s for s in row["stages"] if s in ("preparing", "prepared", "evaluating", "evaluated", "canary")
        ] == ["preparing", "prepared", "evaluating", "evaluated", "canary"]
        assert row["live_traffic"]["requests"] > 0
        report = Path(row["report"])
        assert report.is_file() and report.is_relative_to(home)
        assert row["migration_id"] in report.read_text()
    # (2) the RAG support app: evaluate -> canary 5/25/50/100 -> promoted
    support = migrations["support-chat"]
    assert support["from_model"] == "gpt-4o@2024-05-13"
    assert support["final_status"] == "succeeded" and support["canary_verdict"] == "successful"
    assert support["canary"]["weights"] == [*DemoSettings().canary_steps]
    assert support["stages"][-2:] == ["promoting", "succeeded"]
    # (3) the cl100k app: re-chunked with o200k into a new index generation, evaluated, canaried, promoted
    hr = migrations["hr-handbook"]
    assert hr["from_model"] == "gpt-35-turbo@0125" and hr["final_status"] == "succeeded"
    assert hr["chunking"]["tokenizer"] == "o200k_base" and hr["index_generation"]
    assert hr["index_generation"] != hr["chunking"]["baseline_generation"]
    # (4) the fine-tuned app: its fine-tune re-run on the new base, then promoted
    claims = migrations["claims-assistant"]
    assert claims["final_status"] == "succeeded"
    assert claims["fine_tuned_model"].startswith("gpt-4.1-2025-04-14.ft-") and claims["fine_tune_job"]
    # (5) the live-degrading successor passed offline and was rolled back by the canary analysis
    faq = migrations["backup-faq"]
    assert faq["final_status"] == "rolled_back" and faq["canary_verdict"] == "failed"
    assert faq["stages"][-2:] == ["rolling_back", "rolled_back"]
    assert "error_rate" in faq["canary"]["reason"]
    assert faq["live_traffic"]["by_status"].get("502", 0) + faq["live_traffic"]["by_status"].get("500", 0) > 0
    assert steps["audit"]["ok"] is True and steps["audit"]["details"]["verified"] is True


@pytest.mark.slow
def test_a_demo_outcome_that_does_not_happen_exits_1_and_is_named(tmp_path: Path) -> None:
    """A scenario whose good successor answers badly: support-chat is rejected by the offline gate."""
    data = default_scenario_data()
    data["profiles"]["gpt-4o@2024-11-20"]["quality"] = 0.1
    scenario = tmp_path / "bad-successor.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, _ = _demo(tmp_path, "--scenario", str(scenario), "--only", "support-chat")
    assert code == 1
    assert out["ok"] is False
    assert [m["app"] for m in out["migrations"]] == ["support-chat"]
    row = out["migrations"][0]
    assert row["final_status"] == "failed" and row["gate_verdict"] == "fail"
    assert any("offline gate did not pass" in p for p in row["problems"])
    assert any("expected succeeded" in p for p in row["problems"])
    assert any(f.startswith("support-chat:") for f in out["failures"])
    # the rest of the demo still did its part: the audit chain of what happened verifies
    assert {s["name"]: s["ok"] for s in out["steps"]}["audit"] is True


def test_an_unknown_app_is_refused_naming_the_demo_apps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSHIFT_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["demo", "--only", "payroll-bot"])
    assert result.exit_code == 2, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "payroll-bot" in text and "support-chat" in text
    assert not (tmp_path / "home" / "demo").exists()


def test_the_demo_scenario_scales_capacity_and_stays_valid() -> None:
    demo = DemoSettings()
    k = demo.capacity_scale
    scenario = parse_scenario(demo_scenario(None, demo), "demo")
    default = default_scenario_data()
    support = default["subscriptions"][0]["resource_groups"][0]["accounts"][0]["deployments"][0]
    assert support["name"] == "support-chat-4o"
    deployments = {
        d.name: d
        for s in scenario.subscriptions
        for g in s.resource_groups
        for a in g.accounts
        for d in a.deployments
    }
    assert deployments["support-chat-4o"].sku.capacity == support["sku"]["capacity"] * k
    assert scenario.default_usage_limit == default["default_usage_limit"] * k
    gpt4o = next(m for m in scenario.catalog if m.key == "gpt-4o@2024-11-20")
    assert gpt4o.max_capacity == 450 * k
    # behaviour is untouched: the degrading successor still degrades
    assert scenario.profiles["gpt-4.1-nano@2025-04-14"].degrades_after_requests is not None


def test_bundle_copies_carry_the_demo_policy_and_validate(tmp_path: Path) -> None:
    demo = DemoSettings()
    bundles = copy_bundles(REPO / "bundles", tmp_path / "bundles", demo)
    assert sorted(b.app for b in bundles) == sorted(EXPECTED)
    for bundle in bundles:
        original = load_bundle(REPO / "bundles" / bundle.app / "1.0.0")
        canary = bundle.manifest.canary
        assert canary.steps == demo.steps_for(bundle.app) and not canary.approval_required
        assert canary.min_requests_per_step == demo.min_requests_per_step
        assert (
            bundle.manifest.model.sku.capacity == original.manifest.model.sku.capacity * demo.capacity_scale
        )
        assert bundle.manifest.evaluation.metrics["latency_p95_ms"].relative_margin == demo.latency_p95_margin
        assert (
            bundle.manifest.evaluation.metrics["answer_f1"]
            == original.manifest.evaluation.metrics["answer_f1"]
        )
        assert bundle.digest != original.digest
