"""Fine-tuning re-run: the same training data and hyperparameters on a new base model, resumable, then a
side-by-side deployment of the result.

::

    request = FineTuneRequest.from_bundle(bundle, target=ModelRef(name="gpt-4.1-mini", version="2025-04-14"),
                                          migration_id=migration.id)
    result = FineTuneRun(request, fine_tuning=aoai, deployments=arm, store=store, clock=utcnow).run(
        on_event=lambda e: logger.info("%s %s", e.level, e.message)
    )
    result.record.fine_tuned_model, result.deployment.name
"""

from __future__ import annotations

from modelshift.finetune.catalog import CatalogFineTuneRequest, is_catalog_bundle
from modelshift.finetune.poll import EventCallback, EventCursor, PollPolicy
from modelshift.finetune.records import FineTuneJobRow, FineTuneJobStore, FineTunePhase, FineTuneRecord
from modelshift.finetune.request import FineTuneRequest, base_model_id, merge_hyperparameters
from modelshift.finetune.run import FineTuneResult, FineTuneRun, ResumableFineTuning

__all__ = [
    "CatalogFineTuneRequest",
    "EventCallback",
    "EventCursor",
    "FineTuneJobRow",
    "FineTuneJobStore",
    "FineTunePhase",
    "FineTuneRecord",
    "FineTuneRequest",
    "FineTuneResult",
    "FineTuneRun",
    "PollPolicy",
    "ResumableFineTuning",
    "base_model_id",
    "is_catalog_bundle",
    "merge_hyperparameters",
]
