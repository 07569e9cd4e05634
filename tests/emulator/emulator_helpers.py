"""Helpers shared by the emulator tests (constants, URLs, message builders, contract files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelshift.emulator.testing import EmulatorHandle

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts" / "azure"
ARM_VERSION = "2025-06-01"
DATA_VERSION = "2024-10-21"
SUB = "00000000-0000-0000-0000-000000000001"


def contract(name: str) -> Any:
    """A contract JSON file copied from the Azure specs (tests/contracts/azure)."""
    return json.loads((CONTRACTS / name).read_text(encoding="utf-8"))


def account_path(rg: str, account: str) -> str:
    """ARM path of an account in the default subscription."""
    return (
        f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}"
    )


def chat_url(emu: EmulatorHandle, account: str, deployment: str) -> str:
    """Classic chat-completions URL of a deployment."""
    return f"{emu.endpoint_for(account)}openai/deployments/{deployment}/chat/completions"


def rag_messages(
    context: str, question: str, system: str = "Answer only from the context."
) -> list[dict[str, str]]:
    """System + user message with the context and a 'Question:' line, as the RAG apps send them."""
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{context}\n\nQuestion: {question}"},
    ]
