"""Context window, output limit and tokenizer of a model: from the catalog when it says, else a small table.

ARM catalog entries carry ``capabilities.maxContextToken`` / ``maxOutputToken`` for many models (strings, as
every capability value); older api-versions and recordings often leave them out, hence the table.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from modelshift.errors import ConfigError
from modelshift.grounding.tokenizers import encoding_name_for_model
from modelshift.platforms.base import CatalogModel

#: (name prefix, version or None for any) -> (context window, max output tokens); longest prefix wins and an
#: exact version beats "any"
_TABLE: dict[tuple[str, str | None], tuple[int, int]] = {
    ("gpt-35-turbo", None): (16_385, 4_096),
    ("gpt-35-turbo", "0301"): (4_096, 4_096),
    ("gpt-35-turbo", "0613"): (4_096, 4_096),
    ("gpt-35-turbo-16k", None): (16_384, 4_096),
    ("gpt-4", None): (8_192, 4_096),
    ("gpt-4-32k", None): (32_768, 4_096),
    ("gpt-4", "1106-Preview"): (128_000, 4_096),
    ("gpt-4", "0125-Preview"): (128_000, 4_096),
    ("gpt-4", "turbo-2024-04-09"): (128_000, 4_096),
    ("gpt-4-turbo", None): (128_000, 4_096),
    ("gpt-4o", None): (128_000, 16_384),
    ("gpt-4o", "2024-05-13"): (128_000, 4_096),
    ("gpt-4o-mini", None): (128_000, 16_384),
    ("gpt-4.1", None): (1_047_576, 32_768),
    ("o1", None): (200_000, 100_000),
    ("o3", None): (200_000, 100_000),
    ("o4-mini", None): (200_000, 100_000),
    ("gpt-5", None): (400_000, 128_000),
    ("text-embedding", None): (8_191, 0),
}


class ModelFacts(BaseModel):
    """What re-chunking and prompt budgets need to know about one model version, and where it came from."""

    model_config = ConfigDict(frozen=True)

    context_window: int | None
    max_output_tokens: int | None
    tokenizer: str | None
    source: str


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _table_lookup(name: str, version: str | None) -> tuple[int, int] | None:
    key = name.lower().split(".ft-", 1)[0]
    best: tuple[int, int, tuple[int, int]] | None = None
    for (prefix, ver), facts in _TABLE.items():
        if not key.startswith(prefix) or (ver is not None and ver != version):
            continue
        rank = (len(prefix), 1 if ver is not None else 0)
        if best is None or rank > best[:2]:
            best = (*rank, facts)
    return best[2] if best else None


def model_facts(name: str, version: str | None, catalog: CatalogModel | None = None) -> ModelFacts:
    """Context window, output limit and tokenizer of ``name@version``; catalog capabilities win over the
    built-in table. Unknown values are None (the plan then says it cannot judge the chunk policy)."""
    caps = catalog.capabilities if catalog is not None else {}
    window = _int(caps.get("maxContextToken"))
    output = _int(caps.get("maxOutputToken"))
    source = "catalog capabilities"
    if window is None or output is None:
        table = _table_lookup(name, version)
        if table is not None:
            source = (
                "catalog + built-in table" if window is not None or output is not None else "built-in table"
            )
            window = window if window is not None else table[0]
            output = output if output is not None else table[1]
        elif window is None and output is None:
            source = "unknown"
    try:
        tokenizer: str | None = encoding_name_for_model(name)
    except ConfigError:
        tokenizer = None
    return ModelFacts(context_window=window, max_output_tokens=output, tokenizer=tokenizer, source=source)
