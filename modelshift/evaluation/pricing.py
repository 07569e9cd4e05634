"""Token prices per model, for the ``cost`` metric.

Prices are per 1,000 tokens, prompt and completion apart, in one currency (USD by default). The defaults
cover the models of the emulator's catalog at list prices of the time they were written; they are there so
an evaluation reports a cost out of the box, not as a billing source. Override or extend them with a YAML or
JSON file named by ``MODELSHIFT_PRICE_TABLE_FILE``::

    currency: USD
    models:
      gpt-4o: {prompt_per_1k: 0.0025, completion_per_1k: 0.01}
      gpt-4o@2024-05-13: {prompt_per_1k: 0.005, completion_per_1k: 0.015}   # one version only

Lookup order for a model ``name`` at ``version``: ``name@version``, then ``name``, then — for a fine-tuned
model named ``<base>.ft-<id>`` — the same two keys for ``<base>``. A model not in the table has no cost
(the metric is None for it, and a gate on ``cost`` says so instead of guessing).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelshift.errors import ConfigError
from modelshift.settings import Settings


class ModelPrice(BaseModel):
    """The price of one model: per 1,000 prompt tokens and per 1,000 completion tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_per_1k: float = Field(ge=0)
    completion_per_1k: float = Field(ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """``prompt_tokens/1000 * prompt_per_1k + completion_tokens/1000 * completion_per_1k``."""
        return prompt_tokens / 1000 * self.prompt_per_1k + completion_tokens / 1000 * self.completion_per_1k


def _p(prompt: float, completion: float) -> ModelPrice:
    return ModelPrice(prompt_per_1k=prompt, completion_per_1k=completion)


#: Default prices (USD per 1K tokens) for the catalog models; keys are ``name`` or ``name@version``.
DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "gpt-4o": _p(0.0025, 0.01),
    "gpt-4o@2024-05-13": _p(0.005, 0.015),
    "gpt-4o-mini": _p(0.00015, 0.0006),
    "gpt-4.1": _p(0.002, 0.008),
    "gpt-4.1-mini": _p(0.0004, 0.0016),
    "gpt-4.1-nano": _p(0.0001, 0.0004),
    "gpt-35-turbo": _p(0.0005, 0.0015),
    "gpt-35-turbo@0613": _p(0.0015, 0.002),
    "text-embedding-3-small": _p(0.00002, 0.0),
    "text-embedding-3-large": _p(0.00013, 0.0),
    "DeepSeek-R1": _p(0.00135, 0.0054),
}


class PriceTable(BaseModel):
    """Prices by model key (``name`` or ``name@version``) in one currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(default="USD", min_length=1)
    models: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

    def lookup(self, name: str, version: str | None = None) -> ModelPrice | None:
        """The price for ``name`` at ``version`` (see the module docstring for the order), or None."""
        names = [name]
        if ".ft-" in name:
            # A fine-tuned deployment is billed like its base unless the table names it.
            names.append(name.split(".ft-", 1)[0])
        for candidate in names:
            if version is not None and f"{candidate}@{version}" in self.models:
                return self.models[f"{candidate}@{version}"]
            if candidate in self.models:
                return self.models[candidate]
        return None

    def cost(
        self, name: str, version: str | None, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        """The cost of one call, or None when the model is unpriced or a token count is unknown."""
        price = self.lookup(name, version)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return price.cost(prompt_tokens, completion_tokens)


def load_price_table(path: Path | None) -> PriceTable:
    """The default table, with the models of the YAML/JSON file at ``path`` merged over it (None: defaults).

    Raises ConfigError naming the file and the field when the file is missing, unparsable or malformed.
    """
    if path is None:
        return PriceTable()
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"price table {path} cannot be read ({exc.strerror}); fix MODELSHIFT_PRICE_TABLE_FILE"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"price table {path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"price table {path} must be a mapping with a 'models' key, e.g. "
            "models: {gpt-4o: {prompt_per_1k: 0.0025, completion_per_1k: 0.01}}"
        )
    try:
        override = PriceTable.model_validate({"models": {}, **raw})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"price table {path}: {where}: {first['msg']} ({exc.error_count()} problem(s)); "
            "each model needs prompt_per_1k and completion_per_1k, numbers >= 0"
        ) from None
    return PriceTable(currency=override.currency, models={**DEFAULT_PRICES, **override.models})


def price_table_from_settings(settings: Settings) -> PriceTable:
    """The price table the settings name (``price_table_file``), or the defaults."""
    return load_price_table(settings.price_table_file)
