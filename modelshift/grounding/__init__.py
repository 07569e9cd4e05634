"""Grounding data: tokenizers (offline-capable), chunking and the retrieval index."""

from __future__ import annotations
