"""Offline tiktoken encodings (cl100k_base, o200k_base) and the model-name -> encoding table.

``tiktoken.get_encoding`` downloads its BPE file on first use, which fails on air-gapped machines. The
``bpe-openai`` package ships the same files (gzip, byte-identical once decompressed), so we build
``tiktoken.Encoding`` from them with tiktoken's own split pattern and special tokens for each encoding.
Nothing here touches the network or the filesystem outside the installed package.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from dataclasses import dataclass
from importlib import resources

import tiktoken

from modelshift.errors import ConfigError

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

# Patterns and special tokens as tiktoken_ext.openai_public defines them (tiktoken 0.8+); the tests check
# that counts agree with tiktoken's own loader and with bpe-openai's tokenizer.
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


@dataclass(frozen=True)
class _Spec:
    pat_str: str
    special_tokens: dict[str, int]
    sha256: str  # of the decompressed .tiktoken file, as tiktoken checks it


_SPECS: dict[str, _Spec] = {
    "cl100k_base": _Spec(
        pat_str=_CL100K_PAT,
        special_tokens={
            ENDOFTEXT: 100257,
            FIM_PREFIX: 100258,
            FIM_MIDDLE: 100259,
            FIM_SUFFIX: 100260,
            ENDOFPROMPT: 100276,
        },
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": _Spec(
        pat_str=_O200K_PAT,
        special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}

#: encodings this module can build offline
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_SPECS)

# Longest prefix wins; order within the table does not matter because we sort by length.
_MODEL_PREFIXES: dict[str, str] = {
    "gpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "text-embedding-": "cl100k_base",
}

_cache: dict[str, tiktoken.Encoding] = {}
_lock = threading.Lock()


def _load_ranks(name: str, spec: _Spec) -> dict[bytes, int]:
    resource = resources.files("bpe_openai").joinpath("data").joinpath(f"{name}.tiktoken.gz")
    try:
        raw = gzip.decompress(resource.read_bytes())
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(
            f"the BPE file for {name} is missing from the bpe-openai package ({exc}); "
            "reinstall modelshift's dependencies (`pip install bpe-openai`)"
        ) from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise ConfigError(
            f"bpe_openai/data/{name}.tiktoken.gz has sha256 {digest}, expected {spec.sha256}; "
            "reinstall bpe-openai"
        )
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name`` (cl100k_base or o200k_base), built offline and cached per process."""
    spec = _SPECS.get(name)
    if spec is None:
        raise ConfigError(f"unknown tokenizer encoding {name!r}; use one of {', '.join(SUPPORTED_ENCODINGS)}")
    with _lock:
        enc = _cache.get(name)
        if enc is None:
            enc = tiktoken.Encoding(
                name=name,
                pat_str=spec.pat_str,
                mergeable_ranks=_load_ranks(name, spec),
                special_tokens=dict(spec.special_tokens),
            )
            _cache[name] = enc
        return enc


def encoding_name_for_model(model_name: str) -> str:
    """The encoding a model uses: gpt-4o/4.1/5 and o-series -> o200k_base; gpt-4/3.5, embeddings -> cl100k."""
    key = model_name.strip().lower()
    # fine-tuned models are named "<base>-<version>.ft-<hex>"; the base decides the tokenizer
    key = key.split(".ft-", 1)[0]
    for prefix in sorted(_MODEL_PREFIXES, key=len, reverse=True):
        if key.startswith(prefix):
            return _MODEL_PREFIXES[prefix]
    raise ConfigError(
        f"no known tokenizer for model {model_name!r}; name an encoding explicitly "
        f"(one of {', '.join(SUPPORTED_ENCODINGS)}), e.g. `--tokenizer o200k_base`"
    )


def encoding_for_model(model_name: str) -> tiktoken.Encoding:
    """The offline tiktoken encoding for ``model_name``; unknown model names raise ConfigError."""
    return get_encoding(encoding_name_for_model(model_name))


def count_tokens(text: str, encoding: str | tiktoken.Encoding = "o200k_base") -> int:
    """Number of tokens in ``text``; special-token strings are counted as ordinary text, as the API does."""
    enc = get_encoding(encoding) if isinstance(encoding, str) else encoding
    return len(enc.encode(text, disallowed_special=()))
