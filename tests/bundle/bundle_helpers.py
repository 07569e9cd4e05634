"""Helpers for bundle tests: a valid tiny bundle, and ways to break it one field or file at a time."""

from __future__ import annotations

import json
from typing import Any

DELETE = object()

SYSTEM = "You are the Contoso Backup support assistant.\nAnswer only from the context.\n"
USER = "Context:\n{context}\n\nQuestion: {question}\n"
SYSTEM_41 = "1. Answer only from the context.\n2. Cite the file name.\n"


def golden_lines(n: int = 3) -> str:
    """``n`` valid golden items whose sources exist in the default corpus."""
    rows = [
        {
            "id": f"q{i:03d}",
            "question": f"How do I restore file {i}?",
            "answer": f"Use restore {i}.",
            "sources": ["restore.md"],
            "tags": ["restore"],
        }
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def training_lines(n: int = 10) -> str:
    """``n`` valid chat fine-tuning examples (one with a weighted multi-turn conversation)."""
    rows: list[dict[str, Any]] = [
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(n - 1)
    ]
    rows.append(
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "weight": 0},
                {"role": "user", "content": "again"},
                {"role": "assistant", "content": "b", "weight": 1},
            ]
        }
    )
    return "".join(json.dumps(r) + "\n" for r in rows)


def base_manifest() -> dict[str, Any]:
    """A valid manifest that references every kind of file (prompts, override, corpus, data, schema)."""
    return {
        "app": "support-chat",
        "version": "1.0.0",
        "description": "test bundle",
        "model": {
            "platform": "azure-openai",
            "subscription": "00000000-0000-0000-0000-000000000001",
            "resource_group": "rg-support",
            "account": "contoso-aoai-eus",
            "endpoint": None,
            "location": "eastus",
            "deployment": "support-chat-4o",
            "name": "gpt-4o-mini",
            "version": "2024-07-18",
            "sku": {"name": "GlobalStandard", "capacity": 50},
            "fine_tune": {
                "training_file": "../shared/train.jsonl",
                "validation_file": "../shared/valid.jsonl",
                "hyperparameters": {"n_epochs": 3},
                "suffix": "claims-tone",
                "seed": 42,
            },
        },
        "prompts": {
            "system": "prompts/system.md",
            "user_template": "prompts/user.md",
            "overrides": {"gpt-4.1": {"system": "prompts/system.gpt-4.1.md"}},
        },
        "parameters": {"temperature": 0.0, "max_tokens": 400, "seed": 7},
        "retrieval": {
            "corpus": "../shared/corpus",
            "tokenizer": "o200k_base",
            "chunk_tokens": 512,
            "overlap_tokens": 64,
            "top_k": 4,
        },
        "evaluation": {
            "dataset": "../shared/golden.jsonl",
            "json_schema": "../shared/answer.schema.json",
            "metrics": {
                "answer_f1": {"greater_is_better": True, "absolute_margin": 0.03, "critical": True},
                "latency_p95_ms": {"greater_is_better": False, "relative_margin": 0.25},
            },
        },
        "canary": {"steps": [5, 25, 50, 100]},
    }


def default_files() -> dict[str, str | bytes]:
    """Files of the default bundle, relative to the bundle directory."""
    return {
        "prompts/system.md": SYSTEM,
        "prompts/user.md": USER,
        "prompts/system.gpt-4.1.md": SYSTEM_41,
        "../shared/corpus/restore.md": "# Restore\nPick a snapshot and press Restore.\n",
        "../shared/corpus/schedules.txt": "Backups run nightly at 02:00.\n",
        "../shared/corpus/faq/encryption.html": "<h1>Encryption</h1><p>AES-256.</p>\n",
        "../shared/golden.jsonl": golden_lines(),
        "../shared/train.jsonl": training_lines(),
        "../shared/valid.jsonl": training_lines(2),
        "../shared/answer.schema.json": json.dumps({"type": "object", "required": ["answer"]}),
    }


def set_in(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set (or with DELETE remove) ``data[a][b][c]`` for ``dotted`` = "a.b.c"; ``|`` separates dotted keys."""
    parts = dotted.split("|") if "|" in dotted else dotted.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    if value is DELETE:
        data.pop(parts[-1], None)
    else:
        data[parts[-1]] = value
