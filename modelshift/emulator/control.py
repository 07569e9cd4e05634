"""Emulator-only control endpoints under ``/_emulator/``: scenario clock, runtime faults, reset.

These do not exist on Azure; they let tests and demos move time forward and break deployments on purpose.
They accept the same credentials as the data plane (an api-key or a bearer token from the scenario).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelshift.clock import ensure_utc
from modelshift.emulator.scenario import FaultSpec
from modelshift.emulator.web import AzureHTTPError, require_data_auth, world_of

router = APIRouter(prefix="/_emulator", dependencies=[Depends(require_data_auth)])


class ClockChange(BaseModel):
    """Move the scenario clock: ``advance_seconds`` forward, or ``set`` to a time; optionally a new speed."""

    model_config = ConfigDict(extra="forbid")
    advance_seconds: float | None = None
    set: datetime | None = None
    speed: float | None = Field(default=None, gt=0)


class FaultChange(BaseModel):
    """Faults for one deployment (replacing earlier ones); all rates zero clears them."""

    model_config = ConfigDict(extra="forbid")
    account: str
    deployment: str
    faults: FaultSpec


class Settings(BaseModel):
    """Runtime knobs: the latency scale and the ARM page size."""

    model_config = ConfigDict(extra="forbid")
    latency_scale: float | None = Field(default=None, ge=0)
    page_size: int | None = Field(default=None, ge=1)


def _parse(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise AzureHTTPError(400, "BadRequest", f"invalid {model.__name__} body: {problems}") from exc


def _clock_body(request: Request) -> dict[str, Any]:
    world = world_of(request)
    return {"now": world.clock().isoformat(), "speed": world.clock.speed}


@router.get("/clock")
def get_clock(request: Request) -> dict[str, Any]:
    """The scenario time and speed."""
    return _clock_body(request)


@router.post("/clock")
async def change_clock(request: Request) -> dict[str, Any]:
    """Advance or set the scenario clock."""
    change: ClockChange = _parse(ClockChange, await request.json())
    world = world_of(request)
    with world.lock:
        if change.set is not None:
            world.clock.set(ensure_utc(change.set), change.speed)
        elif change.speed is not None:
            world.clock.set(world.clock(), change.speed)
        if change.advance_seconds is not None:
            world.clock.advance(change.advance_seconds)
    return _clock_body(request)


@router.get("/faults")
def list_faults(request: Request) -> dict[str, Any]:
    """Faults in force, per account/deployment."""
    world = world_of(request)
    return {
        "value": [
            {"account": a, "deployment": d, "faults": f.model_dump()}
            for (a, d), f in sorted(world.faults.items())
        ]
    }


@router.post("/faults")
async def set_faults(request: Request) -> dict[str, Any]:
    """Inject (or clear) faults for one deployment at run time."""
    change: FaultChange = _parse(FaultChange, await request.json())
    world = world_of(request)
    if change.account not in world.accounts:
        raise AzureHTTPError(404, "ResourceNotFound", f"no account '{change.account}' in the scenario")
    with world.lock:
        if change.faults == FaultSpec():
            world.faults.pop((change.account, change.deployment), None)
        else:
            world.faults[(change.account, change.deployment)] = change.faults
    return {"account": change.account, "deployment": change.deployment, "faults": change.faults.model_dump()}


@router.post("/settings")
async def change_settings(request: Request) -> dict[str, Any]:
    """Change the latency scale or the ARM page size while running."""
    change: Settings = _parse(Settings, await request.json())
    world = world_of(request)
    with world.lock:
        if change.latency_scale is not None:
            world.latency_scale = change.latency_scale
        if change.page_size is not None:
            world.page_size = change.page_size
    return {"latency_scale": world.latency_scale, "page_size": world.page_size}


@router.post("/reset")
def reset(request: Request) -> dict[str, Any]:
    """Back to the scenario as loaded (clock, deployments, files, jobs, faults, limiters)."""
    world_of(request).reset()
    return _clock_body(request)
