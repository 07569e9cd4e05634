"""Project-wide fixtures: a real PostgreSQL server for the test session, and fresh databases on it.

``postgres_server`` (session) runs ``initdb`` into a temp dir and ``pg_ctl start`` on a free port bound to
127.0.0.1, and stops it at the end. ``postgres_url_factory`` creates a fresh database per call and returns
its ``postgresql+psycopg://`` URL; ``postgres_url`` is one such database. When the binaries are missing the
fixture runs ``scripts/postgres.sh`` (Debian's package); if PostgreSQL still cannot start, it fails loudly
under ``CI=true`` and skips elsewhere.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = REPO / "scripts" / "postgres.sh"
# initdb refuses to run as root, so as root the cluster belongs to this unprivileged user.
PG_OS_USER = "postgres"
PG_SUPERUSER = "postgres"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(message: str) -> None:
    if _in_ci():
        pytest.fail(f"PostgreSQL is required in CI: {message}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {message}")


def _find_bindir() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
    )
    for bindir in reversed(candidates):
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def _install() -> Path | None:
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        _unavailable(f"{INSTALL_SCRIPT.name} failed:\n{result.stderr[-2000:]}")
    return _find_bindir()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_os_user() -> None:
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            check=True,
            capture_output=True,
        )


@dataclass
class PostgresServer:
    """A running throw-away PostgreSQL cluster owned by the test session."""

    bindir: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def admin_dsn(self) -> str:
        """A libpq DSN to the maintenance database, for creating databases."""
        return f"host=127.0.0.1 port={self.port} user={PG_SUPERUSER} dbname=postgres"

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster's owner."""
        return subprocess.run(
            [*self.as_user, str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database and return its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: t_<hex> or a test's literal
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast: nothing in it must survive) and remove its files."""
        self.run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def _start_server() -> PostgresServer:
    bindir = _find_bindir() or _install()
    if bindir is None:
        _unavailable("initdb/pg_ctl not found, even after scripts/postgres.sh")
    assert bindir is not None
    # mkdtemp is 0700 and lives directly in /tmp (world-traversable), so the cluster owner can reach it.
    root = Path(tempfile.mkdtemp(prefix="modelshift-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        _ensure_os_user()
        shutil.chown(root, user=PG_OS_USER)
        as_user = ["runuser", "-u", PG_OS_USER, "--"]
    server = PostgresServer(bindir=bindir, root=root, port=0, as_user=as_user)
    init = server.run(
        "initdb", "-D", str(server.data_dir), "-U", PG_SUPERUSER, "--auth=trust", "-E", "UTF8",
        "--no-locale", "--no-sync",
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"initdb failed:\n{init.stdout[-1500:]}\n{init.stderr[-1500:]}")
    last_error = ""
    for _ in range(3):  # a free port can be taken between probing and binding; try another
        server.port = _free_port()
        options = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            # Durability is pointless for a throw-away test cluster; speed is not.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        start = server.run(
            "pg_ctl", "-D", str(server.data_dir), "-l", str(root / "server.log"), "-o", options, "-w",
            "-t", "60", "start",
        )  # fmt: skip
        if start.returncode == 0:
            return server
        log = root / "server.log"
        last_error = (start.stderr or start.stdout) + (log.read_text()[-1500:] if log.exists() else "")
    shutil.rmtree(root, ignore_errors=True)
    _unavailable(f"pg_ctl start failed three times:\n{last_error}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole test session (started on first use)."""
    server = _start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url_factory(postgres_server: PostgresServer) -> Callable[[], str]:
    """A callable that creates a fresh, empty database per call and returns its SQLAlchemy URL."""
    counter = itertools.count()

    def make() -> str:
        return postgres_server.create_database(f"t_{uuid.uuid4().hex[:10]}_{next(counter)}")

    return make


@pytest.fixture
def postgres_url(postgres_url_factory: Callable[[], str]) -> str:
    """The URL of a fresh, empty PostgreSQL database for this test."""
    return postgres_url_factory()
