"""What every CLI command shares: output in rich or JSON, exit codes, and opening the store."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

from modelshift.errors import ModelshiftError
from modelshift.settings import Settings, get_settings

if TYPE_CHECKING:
    from modelshift.store import Store

console = Console()
# soft_wrap: error messages are never broken mid-line, so they stay greppable and copyable
err_console = Console(stderr=True, soft_wrap=True)

#: exit codes of the stable CLI surface (DESIGN §7)
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

JsonOption = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def to_jsonable(value: Any) -> Any:
    """Turn pydantic models, dataclasses, enums, paths and datetimes into plain JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (no rich markup, so it can be piped)."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print an error to stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn modelshift errors into a clear message and the error's exit code."""
    try:
        yield
    except ModelshiftError as exc:
        label = type(exc).__name__
        err_console.print(f"[bold red]error ({label}, blame: {exc.blame}):[/] ", end="", highlight=False)
        err_console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None


def settings() -> Settings:
    """The process's settings."""
    return get_settings()


def open_store(cfg: Settings | None = None) -> Store:
    """Open (and migrate) the state store the settings name."""
    from modelshift.store import Store

    cfg = cfg or settings()
    return Store.open(cfg.resolved_database_url)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for command bodies: run inside ``handle_errors``."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with handle_errors():
            return fn(*args, **kwargs)

    return wrapper
