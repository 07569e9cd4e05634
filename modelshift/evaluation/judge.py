"""LLM-judge metrics through azure-ai-evaluation, scored by the judge the evaluation policy pins.

A bundle's ``evaluation.judge`` names an Azure OpenAI deployment and pins the model it runs (name and
version), the api-version and the evaluators to run (groundedness, relevance, coherence, fluency,
similarity: azure-ai-evaluation's 1-5 quality evaluators). The judge is part of the measurement, so:

- :func:`evaluator_version` folds its identity (deployment, account, model name and version, api-version,
  evaluators, the azure-ai-evaluation version and :data:`JUDGE_PROTOCOL`) into the evaluator version that
  keys the baseline cache. Another judge is another measurement: the baseline is measured again.
- In a pair evaluation both runs are judged by the CANDIDATE's judge (the policy the candidate is tested
  under), so the paired scores come from one judge.
- :func:`resolve_judge` checks the pin before anything is judged: through ARM, the deployment must exist and
  run the pinned model. A judge whose deployment answers 404, 410 (a retired judge model), 423, 401 or 403
  on the data plane stops the evaluation with an error that names the judge and where it is pinned;
  any other judge failure is recorded against its item (``judge_errors``) and the item's other metrics
  still count.

Calls go through azure-ai-evaluation's evaluators with an ``AzureOpenAIModelConfiguration`` on the judge's
deployment (endpoint from ARM as for the bundle's own model, key ``MODELSHIFT_API_KEY`` or else
azure-identity). The package retries 429s (honouring ``retry-after``) and 5xx itself; here concurrency is
bounded and, when a :class:`~modelshift.evaluation.ratelimit.RateLimiter` is given, each call reserves its
estimated tokens in it first. The package is imported only when a judge runs (it takes seconds to import);
the quality evaluators used here need no downloads at run time (no nltk data, no tiktoken files).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from modelshift.bundle import Bundle
from modelshift.bundle.manifest import AzureOpenAIModel, Judge
from modelshift.errors import (
    AuthError,
    ConfigError,
    DeploymentNotFoundError,
    DeploymentPausedError,
    ModelRetiredError,
    PlatformError,
)
from modelshift.evaluation.ratelimit import RateLimiter, RateLimits, tokenizer_for_model
from modelshift.evaluation.runner import RUNNER_VERSION, BundleRun, ItemOutcome, Progress, ProgressCallback
from modelshift.orchestration.connect import EndpointDirectory
from modelshift.platforms.base import AccountRef
from modelshift.settings import Settings

#: bump when what a judge score means changes (inputs sent, how scores are read); part of the cache key
JUDGE_PROTOCOL = "judge-1"
PACKAGE = "azure-ai-evaluation"
#: the evaluator class of each judge metric (names from ``bundle.manifest.JUDGE_METRICS``)
EVALUATOR_CLASSES: Mapping[str, str] = {
    "groundedness": "GroundednessEvaluator",
    "relevance": "RelevanceEvaluator",
    "coherence": "CoherenceEvaluator",
    "fluency": "FluencyEvaluator",
    "similarity": "SimilarityEvaluator",
}
#: tokens of an evaluator's own prompt around the judged texts, and the completion it reserves (its prompty
#: files ask for max_tokens 800): what a call is charged beyond the texts, for the rate limiter's estimate
PROMPT_OVERHEAD_TOKENS = 2000
COMPLETION_TOKENS = 800

#: an evaluator: keyword inputs (query, response, context, ground_truth) -> azure-ai-evaluation's result
Evaluator = Callable[..., Mapping[str, Any]]


def package_version() -> str:
    """The installed azure-ai-evaluation version (read from its metadata, without importing it)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"an evaluation.judge is configured but {PACKAGE} is not installed; "
            "install modelshift's judge extra (pip install 'modelshift[judge]') or remove evaluation.judge"
        ) from None


@dataclass(frozen=True)
class JudgeTarget:
    """A pinned judge, resolved: where it is called and the bundle file that pins it."""

    judge: Judge
    #: the data-plane endpoint of the judge's account (ends in '/')
    endpoint: str
    account: str
    api_version: str
    #: the bundle.yaml whose evaluation.judge this is (named in every error)
    source: str
    limits: RateLimits | None = None

    @property
    def label(self) -> str:
        """How messages name the judge."""
        model = self.judge.model
        return (
            f"judge deployment {self.judge.deployment!r} ({model.name} {model.version}) in account "
            f"{self.account}, pinned in {self.source} evaluation.judge"
        )

    def identity(self) -> dict[str, Any]:
        """Everything that makes this judge's scores what they are (hashed into the evaluator version)."""
        return {
            "deployment": self.judge.deployment,
            "account": self.account,
            "model": {"name": self.judge.model.name, "version": self.judge.model.version},
            "api_version": self.api_version,
            "metrics": sorted(self.judge.metrics),
            "package": f"{PACKAGE}=={package_version()}",
            "protocol": JUDGE_PROTOCOL,
        }

    @property
    def evaluator_version(self) -> str:
        """The runner version plus a digest of :meth:`identity` (fits the store's 64 characters)."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]
        return f"{RUNNER_VERSION}+judge-{digest}"


def evaluator_version(target: JudgeTarget | None) -> str:
    """The evaluator version of a run judged by ``target`` (the plain runner version without a judge)."""
    return RUNNER_VERSION if target is None else target.evaluator_version


def resolve_judge(bundle: Bundle, settings: Settings, directory: EndpointDirectory) -> JudgeTarget | None:
    """The judge ``bundle``'s evaluation policy pins, located and checked; None when it pins none.

    The judge lives in ``evaluation.judge.account`` (default: the bundle model's account), in the model's
    subscription and resource group. With ARM, its deployment must exist and run the pinned model.
    """
    judge = bundle.manifest.evaluation.judge
    if judge is None:
        return None
    model = bundle.manifest.model
    source = str(bundle.yaml_path)
    if not isinstance(model, AzureOpenAIModel):
        raise ConfigError(
            f"{source}: evaluation.judge needs model.platform azure-openai to find the judge's account; "
            "remove evaluation.judge"
        )
    account = judge.account or model.account
    ref = AccountRef(subscription_id=model.subscription, resource_group=model.resource_group, name=account)
    if account == model.account and model.endpoint:
        endpoint = model.endpoint
    else:
        endpoint = directory.account_endpoint(bundle, ref)
    target = JudgeTarget(
        judge, endpoint, account, judge.api_version or settings.data_plane_api_version, source
    )
    if directory.arm is None:
        return target
    try:
        deployed = directory.arm.get(ref, judge.deployment)
    except DeploymentNotFoundError:
        raise DeploymentNotFoundError(
            f"{target.label}: the deployment does not exist; deploy the judge or pin an existing one in "
            "evaluation.judge.deployment (a judge change measures the baseline again)",
            status_code=404,
        ) from None
    pinned = judge.model
    if deployed.model.name != pinned.name or deployed.model.version != pinned.version:
        raise ConfigError(
            f"{target.label}: evaluation.judge.model pins {pinned.name} {pinned.version} but the deployment "
            f"runs {deployed.model}; pin the model the judge runs (a judge change measures the baseline "
            "again) or point evaluation.judge.deployment at a deployment of the pinned model"
        )
    limits = RateLimits.from_capacity(deployed.capacity) if deployed.capacity else None
    return replace(target, limits=limits)


def _status(exc: BaseException) -> int | None:
    """The HTTP status an evaluator failure carries somewhere in its chain (openai's APIStatusError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status = getattr(current, "status_code", None)
        if isinstance(status, int):
            return status
        current = current.__cause__ or current.__context__
    return None


def _fatal(target: JudgeTarget, status: int, exc: BaseException) -> PlatformError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    again = "(a judge change measures the baseline again)"
    if status == 410:
        return ModelRetiredError(
            f"{target.label} answered 410: the judge model is retired; pin a live judge model and "
            f"deployment in evaluation.judge {again}. The platform said: {detail}",
            status_code=status,
        )
    if status == 404:
        return DeploymentNotFoundError(
            f"{target.label} answered 404: the judge deployment does not exist at {target.endpoint}; "
            f"deploy it or pin an existing one in evaluation.judge.deployment {again}",
            status_code=status,
        )
    if status == 423:
        return DeploymentPausedError(
            f"{target.label} answered 423: the judge deployment is paused; resume it and evaluate again",
            status_code=status,
        )
    return AuthError(
        f"{target.label} answered {status}: the judge refused the credential; set MODELSHIFT_API_KEY "
        "for the judge's account (or grant the identity a Cognitive Services OpenAI User role)",
        status_code=status,
    )


#: statuses after which the judge cannot judge any item
_FATAL = frozenset({401, 403, 404, 410, 423})


def _context(outcome: ItemOutcome) -> str:
    return "\n\n".join(f"[{p.source}] {p.text}" for p in outcome.contexts)


def judge_inputs(metric: str, outcome: ItemOutcome) -> dict[str, str] | None:
    """The evaluator inputs for one answered item, None when ``metric`` does not apply to it.

    Groundedness needs retrieved context (a bundle without retrieval has none to be grounded in); every
    evaluator needs an answer.
    """
    answer = outcome.answer
    if not outcome.ok or answer is None or not answer.strip():
        return None
    if metric == "groundedness":
        if not outcome.contexts:
            return None
        return {"query": outcome.question, "response": answer, "context": _context(outcome)}
    if metric in ("relevance", "coherence"):
        return {"query": outcome.question, "response": answer}
    if metric == "fluency":
        return {"response": answer}
    if metric == "similarity":
        return {"query": outcome.question, "response": answer, "ground_truth": outcome.reference}
    raise ConfigError(f"unknown judge metric {metric!r}; the judge can run {', '.join(EVALUATOR_CLASSES)}")


def build_evaluators(target: JudgeTarget, api_key: str | None) -> dict[str, Evaluator]:
    """azure-ai-evaluation evaluators for the judge's metrics, on the judge's deployment (imported here)."""
    import azure.ai.evaluation as aie  # slow to import: only when a judge runs

    model_config = aie.AzureOpenAIModelConfiguration(
        azure_endpoint=target.endpoint,
        azure_deployment=target.judge.deployment,
        api_version=target.api_version,
    )
    credential: Any = None
    if api_key:
        model_config["api_key"] = api_key
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    evaluators: dict[str, Evaluator] = {}
    for metric in target.judge.metrics:
        cls = getattr(aie, EVALUATOR_CLASSES[metric])
        evaluators[metric] = cls(model_config, credential=credential) if credential else cls(model_config)
    return evaluators


@dataclass(frozen=True)
class _Verdict:
    score: float | None = None
    error: str | None = None
    tokens: int = 0


class JudgeRunner:
    """Scores the answers of runs with a pinned judge (bounded concurrency, per-item errors)."""

    def __init__(
        self,
        target: JudgeTarget,
        *,
        api_key: str | None,
        concurrency: int = 4,
        limiter: RateLimiter | None = None,
        progress: ProgressCallback | None = None,
        evaluators: Mapping[str, Evaluator] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"judge concurrency must be at least 1, got {concurrency}")
        self.target = target
        self.concurrency = concurrency
        self.limiter = limiter
        self.progress = progress
        self._api_key = api_key
        self._evaluators = dict(evaluators) if evaluators is not None else None
        self._encoding = tokenizer_for_model(target.judge.model.name)
        #: evaluator calls made (tests check that a cached run made none)
        self.calls = 0

    @property
    def evaluator_version(self) -> str:
        """The evaluator version of the runs this judge scores."""
        return self.target.evaluator_version

    def evaluators(self) -> dict[str, Evaluator]:
        """The evaluators, built on first use."""
        if self._evaluators is None:
            self._evaluators = build_evaluators(self.target, self._api_key)
        return self._evaluators

    def _estimate(self, inputs: Mapping[str, str]) -> int:
        texts = sum(len(self._encoding.encode(v, disallowed_special=())) for v in inputs.values())
        return texts + PROMPT_OVERHEAD_TOKENS + COMPLETION_TOKENS

    def _read(self, metric: str, result: Mapping[str, Any]) -> _Verdict:
        properties = result.get(f"{metric}_properties")
        tokens = 0
        if isinstance(properties, Mapping):
            tokens = int(properties.get("prompt_tokens") or 0) + COMPLETION_TOKENS
        score = result.get(metric)
        if score is None and result.get(f"{metric}_status") == "skipped":
            return _Verdict(tokens=tokens)  # the judge found nothing to judge: not applicable
        if not isinstance(score, int | float) or isinstance(score, bool) or math.isnan(score) or score < 0:
            reason = str(result.get(f"{metric}_reason", ""))[:200]
            return _Verdict(
                error=f"the judge gave no usable {metric} score ({reason or score!r})", tokens=tokens
            )
        return _Verdict(score=float(score), tokens=tokens)

    async def _one(
        self, executor: ThreadPoolExecutor, metric: str, evaluator: Evaluator, inputs: Mapping[str, str]
    ) -> _Verdict:
        reservation = await self.limiter.acquire(self._estimate(inputs)) if self.limiter else None
        loop = asyncio.get_running_loop()
        self.calls += 1
        try:
            result = await loop.run_in_executor(executor, lambda: evaluator(**inputs))
        except Exception as exc:  # azure-ai-evaluation raises its own and openai's errors
            if self.limiter is not None and reservation is not None:
                self.limiter.release(reservation)
            status = _status(exc)
            if status in _FATAL:
                raise _fatal(self.target, status, exc) from None
            where = f" ({status})" if status is not None else ""
            return _Verdict(
                error=f"{type(exc).__name__}{where}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            )
        verdict = self._read(metric, result)
        if self.limiter is not None and reservation is not None:
            self.limiter.settle(reservation, verdict.tokens or reservation.tokens)
        return verdict

    async def _item(self, executor: ThreadPoolExecutor, outcome: ItemOutcome) -> ItemOutcome:
        scores: dict[str, float] = {}
        errors: dict[str, str] = {}
        for metric, evaluator in self.evaluators().items():
            inputs = judge_inputs(metric, outcome)
            if inputs is None:
                continue
            verdict = await self._one(executor, metric, evaluator, inputs)
            if verdict.score is not None:
                scores[metric] = verdict.score
            elif verdict.error is not None:
                errors[metric] = verdict.error
        return replace(outcome, judge=scores, judge_errors=errors)

    async def judge(self, run: BundleRun, label: str = "") -> BundleRun:
        """``run`` with every answered item scored by the judge, under the judge's evaluator version.

        The first item is judged alone, so a judge that cannot answer at all (retired, missing, refused)
        fails fast with one clear error instead of once per item.
        """
        outcomes = list(run.outcomes)
        done = 0
        failed = 0
        name = f"{label or run.bundle_digest[:12]} (judge)"

        def report(outcome: ItemOutcome) -> None:
            nonlocal done, failed
            done += 1
            failed += 1 if outcome.judge_errors else 0
            if self.progress is not None:
                self.progress(Progress(name, done, len(outcomes), failed, 0))

        semaphore = asyncio.Semaphore(self.concurrency)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge") as executor:

            async def one(index: int) -> None:
                async with semaphore:
                    outcomes[index] = await self._item(executor, outcomes[index])
                report(outcomes[index])

            if outcomes:
                await one(0)
                tasks = [asyncio.create_task(one(index)) for index in range(1, len(outcomes))]
                try:
                    await asyncio.gather(*tasks)
                except BaseException:
                    # the first error (e.g. the judge retired mid-run) is raised as it is, the rest cancelled
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    raise
        return replace(run, outcomes=tuple(outcomes), evaluator_version=self.evaluator_version)


def judged_errors(run: BundleRun) -> int:
    """Items of ``run`` on which the judge failed for at least one metric (such a run is not cached)."""
    return sum(1 for o in run.outcomes if o.judge_errors)


def open_judge(
    bundle: Bundle,
    settings: Settings,
    directory: EndpointDirectory,
    *,
    limiter: RateLimiter | None = None,
    concurrency: int = 4,
    progress: ProgressCallback | None = None,
) -> JudgeRunner | None:
    """A :class:`JudgeRunner` for the judge ``bundle`` pins (checked first), None when it pins none.

    ``limiter``: the judge deployment's limiter when the caller shares one with runs on that deployment;
    else one from the deployment's ARM capacity (unknown limits: bounded concurrency only)."""
    target = resolve_judge(bundle, settings, directory)
    if target is None:
        return None
    if limiter is None and target.limits is not None:
        limiter = RateLimiter(target.limits)
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return JudgeRunner(target, api_key=key, concurrency=concurrency, limiter=limiter, progress=progress)
