"""Offline tokenizers: exact agreement with tiktoken's own loader and bpe-openai, and no network use."""

from __future__ import annotations

import gzip
import hashlib
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import bpe_openai
import pytest
import tiktoken

from modelshift.errors import ConfigError
from modelshift.grounding import tokenizers
from modelshift.grounding.tokenizers import (
    count_tokens,
    encoding_for_model,
    encoding_name_for_model,
    get_encoding,
)

TEXTS = [
    "",
    "hello world",
    "Backups run every night at 02:00 UTC; they're kept for 30 days.",
    "Ünïcödé — naïve café, 東京, Москва, emoji 🚀🔥 and tabs\tand\nnewlines\r\n",
    "def f(x):\n    return x ** 2  # code\n",
    "   leading and trailing spaces   ",
    "<|endoftext|> is a special token written as text",
    "1234567890 3.14159 1e-10 0x1F",
    "a" * 1000,
    "The quick brown fox jumps over the lazy dog. " * 50,
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """An empty TIKTOKEN_CACHE_DIR and sockets that refuse to connect."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network use is not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(tokenizers, "_cache", {})
    yield


@pytest.fixture(scope="module")
def tiktoken_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tiktoken.Encoding]:
    """tiktoken's own get_encoding, fed from a cache dir seeded with bpe-openai's files (no download)."""
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    out = {}
    for name in ("cl100k_base", "o200k_base"):
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        raw = gzip.decompress(
            resources.files("bpe_openai").joinpath("data").joinpath(f"{name}.tiktoken.gz").read_bytes()
        )
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(raw)
    mp = pytest.MonkeyPatch()
    mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    try:
        for name in ("cl100k_base", "o200k_base"):
            enc = tiktoken.get_encoding(name)
            out[name] = enc
    finally:
        mp.undo()
    return out


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_counts_equal_tiktoken_and_bpe_openai(
    no_network: None, tiktoken_reference: dict[str, tiktoken.Encoding], name: str
) -> None:
    ours = get_encoding(name)
    theirs = tiktoken_reference[name]
    other = bpe_openai.get_encoding(name)
    for text in TEXTS:
        assert ours.encode(text, disallowed_special=()) == theirs.encode(text, disallowed_special=())
        assert count_tokens(text, name) == len(theirs.encode(text, disallowed_special=()))
        plain = text.replace("<|endoftext|>", "")
        assert count_tokens(plain, ours) == len(other.encode(plain))
    assert ours.decode(ours.encode(TEXTS[3])) == TEXTS[3]
    assert ours.special_tokens_set == theirs.special_tokens_set


def test_encodings_are_cached(no_network: None) -> None:
    assert get_encoding("o200k_base") is get_encoding("o200k_base")


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1-2025-04-14", "o200k_base"),
        ("gpt-4.1-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("GPT-35-Turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("gpt-4o-mini-2024-07-18.ft-7c1f0e5a9b2d4c3e8f6a1b0c9d8e7f60", "o200k_base"),
    ],
)
def test_encoding_for_model(model: str, encoding: str) -> None:
    assert encoding_name_for_model(model) == encoding
    assert encoding_for_model(model).name == encoding


@pytest.mark.parametrize("model", ["DeepSeek-R1", "llama-3", "", "claude"])
def test_unknown_model_is_a_config_error(model: str) -> None:
    with pytest.raises(ConfigError, match="no known tokenizer"):
        encoding_name_for_model(model)


def test_unknown_encoding_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cl100k_base, o200k_base"):
        get_encoding("p50k_base")
