"""`modelshift eval` through typer's CliRunner on the real emulator: pass, fail, inconclusive, bad input."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from runner_helpers import SUPPORT, write_bundle
from test_runner import ACCOUNT, BIG, scenario_with
from typer.testing import CliRunner

from modelshift.bundle import Bundle
from modelshift.cli import eval as eval_cmds
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.registry import register
from modelshift.settings import get_settings
from modelshift.store import Store

WORSE = "support-chat-4o-0806"


@pytest.fixture
def emu() -> Iterator[EmulatorHandle]:
    scenario = scenario_with(BIG, 450)
    account = scenario["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    account["deployments"].append(
        {
            "name": WORSE,
            "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-08-06"},
            "sku": {"name": "GlobalStandard", "capacity": 450},
        }
    )
    with running_emulator(scenario, latency_scale=0.05) as handle:
        yield handle


@pytest.fixture
def env(emu: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """MODELSHIFT_* pointing at the emulator and a private home/store."""
    home = tmp_path / "home"
    for name, value in {
        "MODELSHIFT_HOME": str(home),
        "MODELSHIFT_DATABASE_URL": f"sqlite:///{home / 'state.db'}",
        "MODELSHIFT_ACTOR": "tester",
        "MODELSHIFT_ARM_URL": emu.arm_url,
        "MODELSHIFT_ARM_TOKEN": emu.bearer_token,
        "MODELSHIFT_API_KEY": emu.api_key,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def app() -> typer.Typer:
    cli = typer.Typer()
    eval_cmds.register(cli)

    @cli.callback()
    def _root() -> None:
        """Root, so `eval` stays a sub-command."""

    return cli


def invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["eval", *args])
    return result.exit_code, result.stdout, result.stderr


def run_json(app: typer.Typer, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = invoke(app, *args, "--json")
    assert out.strip(), err
    return code, json.loads(out)


@pytest.fixture
def bundles(tmp_path: Path) -> dict[str, Bundle]:
    root = tmp_path / "bundles"
    return {
        "base": write_bundle(root, "1.0.0", model={"deployment": BIG}),
        "same": write_bundle(
            root, "1.0.1", model={"deployment": BIG}, description="same combination, new version"
        ),
        "worse": write_bundle(root, "2.0.0", model={"deployment": WORSE, "version": "2024-08-06"}),
    }


def test_identical_bundles_pass(env: Path, app: typer.Typer, bundles: dict[str, Bundle]) -> None:
    base = str(bundles["base"].root)
    code, out = run_json(app, "--baseline", base, "--candidate", base)
    assert code == 0, out["report"]
    assert out["verdict"] == "pass" and out["passed"] is True
    assert out["baseline"]["items"] == 62 and out["baseline"]["failed"] == []
    assert out["record_id"] is None and "is not registered" in out["not_recorded"]
    golden = (SUPPORT / "shared" / "golden.jsonl").read_bytes()
    assert out["dataset"]["digest"] == hashlib.sha256(golden).hexdigest()


def test_worse_candidate_fails_with_the_metrics_named(
    env: Path, app: typer.Typer, bundles: dict[str, Bundle]
) -> None:
    code, out, err = invoke(
        app, "--baseline", str(bundles["base"].root), "--candidate", str(bundles["worse"].root)
    )
    assert code == 1, err
    assert "fail" in out.lower()
    assert "answer_f1" in out
    code, data = run_json(
        app, "--baseline", str(bundles["base"].root), "--candidate", str(bundles["worse"].root)
    )
    failing = {row["name"] for row in data["report"]["rows"] if row["verdict"] == "fail"}
    assert code == 1 and data["verdict"] == "fail"
    assert "answer_f1" in failing
    assert data["candidate"]["failed"] == []  # the worse model's 8 % errors were retried, none lost


def test_registered_bundles_are_recorded_and_the_baseline_is_cached(
    env: Path, app: typer.Typer, bundles: dict[str, Bundle]
) -> None:
    with Store.open(get_settings().resolved_database_url) as store:
        for key in ("base", "same"):
            register(store, bundles[key], actor="t")
    code, first = run_json(app, "--baseline", "support-chat@1.0.0", "--candidate", str(bundles["same"].root))
    assert code == 0 and first["record_id"] is not None
    assert first["baseline"]["requests"] >= 62 and not first["baseline"]["cached"]
    code, second = run_json(app, "--baseline", "support-chat@1.0.0", "--candidate", "support-chat@1.0.1")
    assert code == 0, (first, second)
    assert second["baseline"]["cached"] and second["baseline"]["requests"] == 0
    assert second["candidate"]["cached"] and second["record_id"] == first["record_id"] + 1
    with Store.open(get_settings().resolved_database_url) as store:
        record = store.passing_evaluation(bundles["same"].digest)
        assert record is not None and record.baseline_digest == bundles["base"].digest


def test_too_few_items_is_inconclusive_and_exits_1(
    env: Path, app: typer.Typer, bundles: dict[str, Bundle], tmp_path: Path
) -> None:
    few = tmp_path / "few.jsonl"
    few.write_bytes(
        b"".join((SUPPORT / "shared" / "golden.jsonl").read_bytes().splitlines(keepends=True)[:5])
    )
    base = str(bundles["base"].root)
    code, out = run_json(app, "--baseline", base, "--candidate", base, "--dataset", str(few))
    assert code == 1 and out["verdict"] == "inconclusive"
    assert out["dataset"]["path"] == str(few) and out["baseline"]["items"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "no/such/dir", "--candidate", "x@1"], "neither a bundle directory nor APP@VERSION"),
        (["--baseline", "support-chat@9.9.9", "--candidate", "support-chat@1.0.0"], "support-chat"),
    ],
)
def test_bad_bundle_refs_exit_2(env: Path, app: typer.Typer, args: list[str], message: str) -> None:
    code, _, err = invoke(app, *args)
    assert code == 2
    assert message in " ".join(err.split())


def test_bad_dataset_exits_2(env: Path, app: typer.Typer, bundles: dict[str, Bundle], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1", "question": "?"}\n')
    base = str(bundles["base"].root)
    code, _, err = invoke(app, "--baseline", base, "--candidate", base, "--dataset", str(bad))
    assert code == 2 and "field 'answer' is missing" in " ".join(err.split())
    code, _, err = invoke(
        app, "--baseline", base, "--candidate", base, "--dataset", str(tmp_path / "none.jsonl")
    )
    assert code == 2 and "cannot read the dataset" in " ".join(err.split())


def test_different_apps_exit_2(env: Path, app: typer.Typer, bundles: dict[str, Bundle]) -> None:
    hr = SUPPORT.parent / "hr-handbook" / "1.0.0"
    code, _, err = invoke(app, "--baseline", str(bundles["base"].root), "--candidate", str(hr))
    assert code == 2 and "compare two versions of the same app" in " ".join(err.split())


def test_unknown_account_is_named(env: Path, app: typer.Typer, tmp_path: Path) -> None:
    broken = write_bundle(tmp_path / "b", "1.0.0", model={"account": "nowhere"})
    code, _, err = invoke(app, "--baseline", str(broken.root), "--candidate", str(broken.root))
    assert code == 2 and "model.account 'nowhere' was not found" in " ".join(err.split())
    assert ACCOUNT not in err
