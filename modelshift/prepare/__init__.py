"""The prepare stage (DESIGN §2): re-chunk the grounding data, deploy the target side by side, and compose
the candidate bundle; the fine-tune re-run itself lives in :mod:`modelshift.finetune`."""

from __future__ import annotations
