"""Per-example features of an Azure OpenAI chat fine-tuning file, computed in plain Python.

Each feature is None when it is fine *or* cannot be judged because an earlier problem (bad UTF-8, bad JSON,
no ``messages`` list) already explains the line; a line is then reported once, for its root cause. The
checks themselves run in Great Expectations (see :mod:`modelshift.validation.suites`).

Token counts follow the estimate OpenAI publishes for chat models (the cookbook's
``num_tokens_from_messages``, which Azure's fine-tuning data guide uses): 3 tokens per message, the
tokens of every string field (role, content, name), 1 more for a ``name``, and 3 that prime the reply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tiktoken

from modelshift.validation.fields import json_type

#: roles a chat fine-tuning example may use; tool/function carry tool results in tool-calling examples
ALLOWED_ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool", "function"})

_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_TOKENS_REPLY_PRIMING = 3


@dataclass(frozen=True)
class ChatFeatures:
    """What the training suite checks about one example; None means "fine or not applicable"."""

    #: why ``messages`` is unusable (missing, not a list, empty, a non-object item); None when usable
    messages_problem: str | None = None
    #: roles outside :data:`ALLOWED_ROLES`, e.g. ``message 2: role 'bot'``
    bad_roles: str | None = None
    #: set when no message is an assistant turn: the roles the example has instead
    missing_assistant: str | None = None
    #: assistant messages with no content (and no tool call), e.g. ``message 3``
    empty_assistant: str | None = None
    #: ``weight`` problems: a value other than 0/1, or a weight on a non-assistant message
    bad_weight: str | None = None
    #: estimated prompt + completion tokens of the whole example
    tokens: int | None = None
    #: sha256 of the canonical JSON of ``messages``, to find duplicate examples
    fingerprint: str | None = None


def chat_features(example: Mapping[str, Any], encoding: tiktoken.Encoding) -> ChatFeatures:
    """The features of one parsed JSONL object against the chat fine-tuning format."""
    messages = example.get("messages")
    problem = _messages_problem(messages)
    if problem is not None or not isinstance(messages, list):
        return ChatFeatures(messages_problem=problem)
    bad_roles: list[str] = []
    empty: list[str] = []
    weights: list[str] = []
    assistant_turns = 0
    for position, message in enumerate(messages, start=1):
        role = message.get("role")
        if role not in ALLOWED_ROLES:
            bad_roles.append(f"message {position}: role {role!r}")
        if role == "assistant":
            assistant_turns += 1
            if _is_blank(message.get("content")) and not _has_tool_call(message):
                empty.append(f"message {position}")
        if "weight" in message:
            weight = message["weight"]
            # bool is an int subclass; JSON true/false is not a weight
            if isinstance(weight, bool) or weight not in (0, 1):
                weights.append(f"message {position}: weight {json.dumps(weight)} (only 0 or 1)")
            elif role != "assistant":
                weights.append(f"message {position}: weight on a {role!r} message (assistant only)")
    roles = ", ".join(str(m.get("role")) for m in messages)
    return ChatFeatures(
        bad_roles="; ".join(bad_roles) or None,
        missing_assistant=None if assistant_turns else f"roles: {roles}",
        empty_assistant=", ".join(empty) or None,
        bad_weight="; ".join(weights) or None,
        tokens=count_chat_tokens(messages, encoding),
        fingerprint=example_fingerprint(messages),
    )


def example_fingerprint(messages: list[Any]) -> str:
    """sha256 of the canonical JSON of ``messages``: equal for the same example whatever its key order."""
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _messages_problem(messages: Any) -> str | None:
    if messages is None:
        return "no `messages` list (the key is missing or null)"
    if not isinstance(messages, list):
        return f"`messages` is {json_type(messages)}, not a list"
    if not messages:
        return "`messages` is empty"
    for position, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            return f"message {position} is {json_type(message)}, not an object"
    return None


def count_chat_tokens(messages: list[dict[str, Any]], encoding: tiktoken.Encoding) -> int:
    """Estimated tokens of a chat example with ``encoding`` (OpenAI's published per-message formula)."""
    total = _TOKENS_REPLY_PRIMING
    for message in messages:
        total += _TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "weight":
                continue
            total += _count(_as_text(value), encoding)
            if key == "name":
                total += _TOKENS_PER_NAME
    return total


def _count(text: str, encoding: tiktoken.Encoding) -> int:
    # special-token strings in user data are ordinary text to the service, so never refuse them
    return len(encoding.encode(text, disallowed_special=()))


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        # multimodal/content-part form: [{"type": "text", "text": "..."}]; other parts count as their JSON
        parts = []
        for part in value:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                parts.append(json.dumps(part, ensure_ascii=False))
        return "".join(parts)
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _is_blank(content: Any) -> bool:
    return not _as_text(content).strip()


def _has_tool_call(message: Mapping[str, Any]) -> bool:
    return bool(message.get("tool_calls") or message.get("function_call"))
