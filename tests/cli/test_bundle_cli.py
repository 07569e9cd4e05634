"""``modelshift bundle ...`` as a user runs it: exit codes, messages, JSON output and store effects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelshift.bundle import load_bundle
from modelshift.cli import app

APPS = ["support-chat", "claims-assistant", "hr-handbook", "backup-faq"]


def run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_examples_ok_as_json(runner: CliRunner, cli_env: Path, examples: Path) -> None:
    code, out, _ = run(runner, "bundle", "validate", str(examples), "--json")
    assert code == 0
    rows = json.loads(out)
    assert sorted(r["app"] for r in rows) == sorted(APPS)
    assert all(r["ok"] and r["digest"].startswith("sha256:") for r in rows)


def test_validate_reports_every_problem_and_exits_2(runner: CliRunner, cli_env: Path, examples: Path) -> None:
    bundle_dir = examples / "support-chat" / "1.0.0"
    manifest = bundle_dir / "bundle.yaml"
    text = manifest.read_text()
    text = text.replace("temperature: 0", "temperature: 7").replace("top_k: 4", "top_k: 0")
    manifest.write_text(text)
    (bundle_dir / "prompts" / "system.md").unlink()
    code, _, err = run(runner, "bundle", "validate", str(bundle_dir))
    assert code == 2
    assert "parameters.temperature" in err
    assert "retrieval.top_k" in err
    assert "prompts.system" in err
    assert "bundle.yaml" in err


def test_digest_matches_library_and_is_stable(runner: CliRunner, cli_env: Path, examples: Path) -> None:
    path = examples / "hr-handbook" / "1.0.0"
    code, out, _ = run(runner, "bundle", "digest", str(path))
    assert code == 0
    assert out.strip() == load_bundle(path).digest
    code, out2, _ = run(runner, "bundle", "digest", str(path / "bundle.yaml"), "--json")
    assert json.loads(out2)["digest"] == out.strip()


def test_register_is_idempotent_and_refuses_changed_content(
    runner: CliRunner, cli_env: Path, examples: Path
) -> None:
    path = examples / "support-chat" / "1.0.0"
    code, out, _ = run(runner, "bundle", "register", str(path), "--json")
    assert code == 0
    first = json.loads(out)[0]
    assert first["result"] == "registered" and first["status"] == "candidate"

    code, out, _ = run(runner, "bundle", "register", str(path), "--json")
    assert code == 0 and json.loads(out)[0]["result"] == "unchanged"

    system = path / "prompts" / "system.md"
    system.write_text(system.read_text() + "\nAlways answer in French.\n")
    new_digest = load_bundle(path).digest
    code, _, err = run(runner, "bundle", "register", str(path))
    assert code == 2
    assert first["digest"] in err and new_digest in err

    code, out, _ = run(runner, "bundle", "list", "--json")
    rows = json.loads(out)
    assert [r["digest"] for r in rows] == [first["digest"]]


def test_register_nothing_when_any_bundle_is_invalid(
    runner: CliRunner, cli_env: Path, examples: Path
) -> None:
    bad = examples / "hr-handbook" / "1.0.0" / "bundle.yaml"
    bad.write_text(bad.read_text().replace("app: hr-handbook", "app: HR Handbook!"))
    code, _, err = run(runner, "bundle", "register", str(examples))
    assert code == 2
    assert "nothing was registered" in err
    code, out, _ = run(runner, "bundle", "list", "--json")
    assert json.loads(out) == []


def test_adopt_marks_production_and_show_defaults_to_it(
    runner: CliRunner, cli_env: Path, examples: Path
) -> None:
    code, out, _ = run(runner, "bundle", "register", str(examples), "--adopt", "--json")
    assert code == 0
    assert {r["status"] for r in json.loads(out)} == {"production"}
    code, out, _ = run(runner, "bundle", "show", "claims-assistant", "--json")
    shown = json.loads(out)
    assert shown["status"] == "production"
    assert shown["manifest"]["model"]["fine_tune"]["suffix"] == "claims-tone"
    assert any(key.startswith("model.fine_tune.training_file") for key in shown["files"]) or shown["files"]
    code, out, _ = run(runner, "bundle", "list", "--status", "production")
    assert code == 0 and "hr-handbook" in out


def test_show_unknown_app_is_bad_input(runner: CliRunner, cli_env: Path) -> None:
    code, _, err = run(runner, "bundle", "show", "no-such-app")
    assert code == 2
    assert "no-such-app" in err


def test_diff_paths_shows_fields_and_prompt_diff(runner: CliRunner, cli_env: Path, examples: Path) -> None:
    a = examples / "support-chat" / "1.0.0"
    b = examples / "support-chat" / "1.1.0"
    import shutil

    shutil.copytree(a, b)
    manifest = b / "bundle.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace('version: "1.0.0"', 'version: "1.1.0"')
        .replace("2024-05-13", "2024-11-20")
    )
    (b / "prompts" / "system.md").write_text("You are terse.\n")
    code, out, _ = run(runner, "bundle", "diff", str(a), str(b))
    assert code == 0
    assert "model.version" in out and "2024-11-20" in out
    assert "+You are terse." in out

    # the same diff from the store, by APP@VERSION, after registering both
    assert run(runner, "bundle", "register", str(a), str(b))[0] == 0
    code, out2, _ = run(runner, "bundle", "diff", "support-chat@1.0.0", "support-chat@1.1.0", "--json")
    assert code == 0
    data = json.loads(out2)
    assert any(change["path"] == "model.version" for change in data["fields"])


def test_diff_unknown_reference_is_bad_input(runner: CliRunner, cli_env: Path) -> None:
    code, _, err = run(runner, "bundle", "diff", "missing-dir", "also-missing")
    assert code == 2
    assert "missing-dir" in err


@pytest.mark.slow
def test_console_script_runs(cli_env: Path, examples: Path) -> None:
    exe = Path(sys.executable).with_name("modelshift")
    proc = subprocess.run(
        [str(exe), "bundle", "validate", str(examples / "support-chat" / "1.0.0")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "support-chat@1.0.0" in proc.stdout
