"""Data-plane files and fine-tuning jobs (placeholder; filled in below)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from modelshift.emulator.web import require_data_auth

router = APIRouter(dependencies=[Depends(require_data_auth)])
