"""The ``bundle.yaml`` schema as pydantic models (DESIGN §1).

Every model forbids unknown keys and validates strictly (``"512"`` is not a number), so a typo in a
manifest is an error instead of a silently ignored setting. Rules that span fields (steps increasing,
overlap below chunk size, what each platform needs) live here too; their errors carry the offending field
in ``ctx["field"]`` so the loader can point at it.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

APP_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
VERSION_PATTERN = r"^[A-Za-z0-9._-]+$"
SUFFIX_PATTERN = r"^[a-zA-Z0-9_-]{1,40}$"

Platform = Literal["azure-openai", "azure-ml", "openai-compatible"]
PLATFORMS: tuple[str, ...] = ("azure-openai", "azure-ml", "openai-compatible")
Tokenizer = Literal["cl100k_base", "o200k_base", "p50k_base", "r50k_base"]


def rule_error(field: str, message: str) -> PydanticCustomError:
    """A cross-field rule violation that names ``field`` (the loader appends it to the error's location)."""
    # The message goes in ctx, not the template: pydantic would try to fill {placeholders} in a template.
    return PydanticCustomError("bundle_rule", "{message}", {"field": field, "message": message})


def check_relpath(value: str) -> str:
    """Return ``value`` if it is a usable bundle-relative POSIX path, else raise ValueError saying why."""
    # Paths are relative to the bundle directory and POSIX-spelled so a bundle means the same on every
    # machine; an absolute path would tie the bundle to one checkout.
    if not value.strip():
        raise ValueError("path is empty; write a path relative to the bundle directory")
    if "\\" in value:
        raise ValueError(f"path {value!r} uses backslashes; write it with forward slashes")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value) or value.startswith("~"):
        raise ValueError(f"path {value!r} is absolute; write it relative to the bundle directory")
    return value


RelPath = Annotated[str, AfterValidator(check_relpath)]
"""A path relative to the bundle directory (may climb into ``../shared/``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Sku(_Strict):
    """Deployment SKU; ``capacity`` is in units of 1000 tokens per minute."""

    name: str = Field(min_length=1)
    capacity: int = Field(ge=1)


class Hyperparameters(_Strict):
    """Fine-tuning hyperparameters; each one left out lets the platform choose."""

    n_epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    learning_rate_multiplier: float | None = Field(default=None, gt=0)


class FineTune(_Strict):
    """How the bundle's model was fine-tuned, so a migration can run the same job on a new base."""

    training_file: RelPath
    validation_file: RelPath | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    suffix: str | None = Field(default=None, pattern=SUFFIX_PATTERN)
    seed: int | None = None
    fine_tuned_model: str | None = Field(default=None, min_length=1)


class _ModelBase(_Strict):
    """Fields shared by every platform; each platform below tightens what it needs."""

    subscription: str | None = None
    resource_group: str | None = Field(default=None, min_length=1)
    account: str | None = Field(default=None, min_length=1)
    endpoint: str | None = None
    location: str | None = Field(default=None, min_length=1)
    deployment: str | None = Field(default=None, min_length=1)
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    format: str = "OpenAI"
    sku: Sku | None = None
    fine_tune: FineTune | None = None

    @field_validator("subscription")
    @classmethod
    def _subscription_is_guid(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError(
                f"subscription {value!r} is not a subscription id (a GUID); copy it from `az account show`"
            ) from None
        return value


class AzureOpenAIModel(_ModelBase):
    """A model deployment in an Azure OpenAI (Cognitive Services) account."""

    platform: Literal["azure-openai"]
    subscription: str
    resource_group: str = Field(min_length=1)
    account: str = Field(min_length=1)
    location: str = Field(min_length=1)
    deployment: str = Field(min_length=1)


class AzureMLModel(_ModelBase):
    """An online deployment behind an Azure ML managed online endpoint (``account`` is the workspace)."""

    platform: Literal["azure-ml"]
    subscription: str
    resource_group: str = Field(min_length=1)
    account: str = Field(min_length=1)
    endpoint: str = Field(min_length=1)
    deployment: str = Field(min_length=1)


class OpenAICompatibleModel(_ModelBase):
    """A model behind any server that speaks the OpenAI chat API; ``endpoint`` is its base URL."""

    platform: Literal["openai-compatible"]
    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"endpoint {value!r} is not an http(s) base URL, e.g. http://127.0.0.1:8000/v1")
        return value


ModelSpec = Annotated[
    AzureOpenAIModel | AzureMLModel | OpenAICompatibleModel, Field(discriminator="platform")
]
"""The model section; ``platform`` decides which fields are required."""


class PromptOverride(_Strict):
    """Prompts for one model family (the key in ``prompts.overrides`` is a model-name prefix)."""

    system: RelPath
    user_template: RelPath | None = None


class Prompts(_Strict):
    """The default prompt files and per-family overrides."""

    system: RelPath
    user_template: RelPath | None = None
    overrides: dict[str, PromptOverride] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _family_names(cls, value: dict[str, PromptOverride]) -> dict[str, PromptOverride]:
        for family in value:
            if not family.strip():
                raise ValueError("an override key is empty; use a model name prefix such as gpt-4.1")
        return value


class Parameters(_Strict):
    """Generation parameters sent with every chat call of this bundle."""

    temperature: float = Field(ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int = Field(ge=1)
    seed: int | None = None
    stop: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list, max_length=4)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)


class Retrieval(_Strict):
    """Grounding: the corpus directory, how it is tokenized and chunked, and how much is retrieved."""

    corpus: RelPath
    tokenizer: Tokenizer
    chunk_tokens: int = Field(ge=16)
    overlap_tokens: int = Field(ge=0)
    top_k: int = Field(ge=1)
    index_generation: str | None = None

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> Retrieval:
        if self.overlap_tokens >= self.chunk_tokens:
            raise rule_error(
                "overlap_tokens",
                f"overlap_tokens ({self.overlap_tokens}) must be less than "
                f"chunk_tokens ({self.chunk_tokens})",
            )
        return self


class Threshold(_Strict):
    """The non-inferiority rule for one metric in the evaluation gate."""

    greater_is_better: bool
    absolute_margin: float | None = Field(default=None, ge=0)
    relative_margin: float | None = Field(default=None, ge=0)
    zero_baseline: Literal["absolute", "fail", "pass"] = "absolute"
    critical: bool = False


#: The azure-ai-evaluation quality evaluators a pinned judge may run (each scores 1-5, higher is better).
JUDGE_METRICS: tuple[str, ...] = ("groundedness", "relevance", "coherence", "fluency", "similarity")
#: Gate metrics named ``judge_<evaluator>`` read the judge's per-item scores.
JUDGE_METRIC_PREFIX = "judge_"


class JudgeModel(_Strict):
    """The model the judge deployment runs. It is pinned: another judge model is another measurement."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class Judge(_Strict):
    """A pinned LLM judge: an Azure OpenAI deployment that scores answers through azure-ai-evaluation.

    The judge's identity (deployment, account, model name and version, api-version, evaluators) is part of
    the evaluator version that keys the baseline cache, so changing the judge re-measures the baseline.
    """

    deployment: str = Field(min_length=1)
    model: JudgeModel
    #: the Azure OpenAI account holding ``deployment``, in the bundle model's subscription and resource
    #: group; default: the bundle model's own account
    account: str | None = Field(default=None, min_length=1)
    #: data-plane api-version of the judge's calls; default MODELSHIFT_DATA_PLANE_API_VERSION
    api_version: str | None = Field(default=None, min_length=1)
    metrics: list[str] = Field(min_length=1)

    @field_validator("metrics")
    @classmethod
    def _known_evaluators(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in JUDGE_METRICS]
        if unknown:
            raise ValueError(
                f"unknown judge metric(s) {', '.join(repr(m) for m in unknown)}; "
                f"the judge can run {', '.join(JUDGE_METRICS)}"
            )
        repeated = sorted({m for m in value if value.count(m) > 1})
        if repeated:
            raise ValueError(f"judge metric(s) {', '.join(repeated)} listed twice; name each once")
        return value


class Evaluation(_Strict):
    """The offline evaluation gate: golden data, confidence and per-metric thresholds."""

    dataset: RelPath
    json_schema: RelPath | None = None
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    min_items: int = Field(default=30, ge=1)
    metrics: dict[str, Threshold] = Field(min_length=1)
    judge: Judge | None = None

    @model_validator(mode="after")
    def _judge_metrics_have_a_judge(self) -> Evaluation:
        for name in self.metrics:
            evaluator = name.removeprefix(JUDGE_METRIC_PREFIX)
            if not name.startswith(JUDGE_METRIC_PREFIX) or evaluator not in JUDGE_METRICS:
                continue
            if self.judge is None:
                raise rule_error(
                    f"metrics.{name}",
                    f"gates on the LLM judge's {evaluator} score but no judge is configured; add "
                    f"evaluation.judge (deployment, model, metrics: [{evaluator}]) or remove {name}",
                )
            if evaluator not in self.judge.metrics:
                raise rule_error(
                    f"metrics.{name}",
                    f"gates on the judge's {evaluator} score but evaluation.judge.metrics does not run "
                    f"{evaluator}; add it to evaluation.judge.metrics or remove {name}",
                )
        return self


class CanaryAnalysis(_Strict):
    """Thresholds of the live canary analysis (each unset field keeps the analysis default).

    A forced migration often changes latency or answer length on purpose (a new model): the tolerances say
    how much change this app accepts before the canary counts as failed.
    """

    confidence: float | None = Field(default=None, ge=0.5, le=0.999)
    error_rate_tolerance: float | None = Field(default=None, ge=0, le=1)
    latency_tolerance: float | None = Field(default=None, ge=0)
    tokens_tolerance: float | None = Field(default=None, ge=0)
    negative_feedback_tolerance: float | None = Field(default=None, ge=0, le=1)
    require_feedback: bool | None = None
    quality_margin: float | None = Field(default=None, ge=0)
    require_quality: bool | None = None


class Canary(_Strict):
    """The traffic ramp, the live analysis thresholds and how inconclusive steps are handled."""

    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100], min_length=1)
    min_requests_per_step: int = Field(default=50, ge=1)
    step_duration_seconds: int = Field(default=60, ge=1)
    max_step_extensions: int = Field(default=2, ge=0)
    approval_required: bool = False
    on_inconclusive: Literal["rollback", "approval"] = "rollback"
    analysis: CanaryAnalysis = Field(default_factory=CanaryAnalysis)

    @field_validator("steps")
    @classmethod
    def _steps_ramp_to_100(cls, steps: list[int]) -> list[int]:
        if any(s < 1 or s > 100 for s in steps):
            raise ValueError(f"steps {steps} must be percentages in 1..100")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"steps {steps} must be strictly increasing")
        if steps[-1] != 100:
            raise ValueError(f"steps {steps} must end at 100 so the candidate takes all traffic")
        return steps


#: (section, key) of optional manifest fields added after the digest was pinned: left out of the canonical
#: form while unset (None, or every sub-field None)
_LATER_OPTIONAL: tuple[tuple[str, str], ...] = (("canary", "analysis"),)


class Manifest(_Strict):
    """The whole ``bundle.yaml``: one tested combination of model, prompts, parameters and policies."""

    app: str = Field(pattern=APP_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    description: str | None = None
    model: ModelSpec
    prompts: Prompts
    parameters: Parameters
    retrieval: Retrieval | None = None
    evaluation: Evaluation
    canary: Canary = Field(default_factory=Canary)

    @model_validator(mode="after")
    def _judge_needs_an_azure_account(self) -> Manifest:
        if self.evaluation.judge is not None and self.model.platform != "azure-openai":
            raise rule_error(
                "evaluation.judge",
                "the LLM judge is an Azure OpenAI deployment found through the bundle model's account, "
                f"so it needs model.platform azure-openai (this bundle is {self.model.platform}); "
                "remove evaluation.judge",
            )
        return self

    def canonical(self) -> dict[str, Any]:
        """The manifest as plain JSON data with every default filled in (the basis of the digest)."""
        data = self.model_dump(mode="json")
        # optional sections added after digests were first pinned stay out while unset, so a new optional
        # field never changes the identity of a bundle that does not use it
        for section, key in _LATER_OPTIONAL:
            value = data[section].get(key)
            if value is None or (isinstance(value, dict) and all(v is None for v in value.values())):
                data[section].pop(key, None)
        # platform first, as people write it (key order does not reach the digest: keys are sorted there)
        model = data["model"]
        data["model"] = {"platform": model.pop("platform"), **model}
        return data
