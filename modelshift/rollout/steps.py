"""Canary steps as a tagged union, and the default step list built from a bundle's canary policy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from modelshift.bundle.manifest import Canary


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SetWeight(_Step):
    """Send ``weight`` percent of the traffic to the candidate and the rest to the baseline."""

    kind: Literal["set_weight"] = "set_weight"
    weight: int = Field(ge=0, le=100)


class Pause(_Step):
    """Hold the current weights for ``seconds``; ``None`` holds until a person resumes (or rejects)."""

    kind: Literal["pause"] = "pause"
    seconds: int | None = Field(default=None, ge=0)


class Analysis(_Step):
    """Compare canary against baseline over a window once both sides have ``min_requests`` requests.

    An inconclusive window is extended up to ``max_extensions`` times (``None``: the rollout policy's
    limit) before the policy's ``on_inconclusive`` applies.
    """

    kind: Literal["analysis"] = "analysis"
    min_requests: int = Field(ge=1)
    window_seconds: int = Field(ge=1)
    max_extensions: int | None = Field(default=None, ge=0)


class Approval(_Step):
    """Stop until a person approves (advance) or rejects (roll back); ``reason`` is shown to them."""

    kind: Literal["approval"] = "approval"
    reason: str = Field(min_length=1)


#: One canary step; dispatch with ``match step: case SetWeight(): ...``.
Step = Annotated[SetWeight | Pause | Analysis | Approval, Field(discriminator="kind")]

#: Validates a step (or a list of them) from plain data, e.g. ``{"kind": "set_weight", "weight": 5}``.
STEP_ADAPTER: TypeAdapter[Step] = TypeAdapter(Step)
STEPS_ADAPTER: TypeAdapter[list[Step]] = TypeAdapter(list[Step])


def steps_from_policy(canary: Canary) -> list[Step]:
    """The step list for a bundle's canary policy.

    Each weight below 100 is followed by an Analysis step with the policy's minimum requests, step duration
    and extension limit; when ``approval_required`` an Approval step comes before the final 100 %.
    For ``[5, 25, 50, 100]``: SetWeight 5, Analysis, SetWeight 25, Analysis, SetWeight 50, Analysis,
    [Approval,] SetWeight 100.
    """
    steps: list[Step] = []
    for weight in canary.steps:
        if weight == 100:
            if canary.approval_required:
                steps.append(
                    Approval(reason="the bundle's canary policy requires approval before 100 % traffic")
                )
            steps.append(SetWeight(weight=100))
            break
        steps.append(SetWeight(weight=weight))
        steps.append(
            Analysis(
                min_requests=canary.min_requests_per_step,
                window_seconds=canary.step_duration_seconds,
                max_extensions=canary.max_step_extensions,
            )
        )
    return steps
