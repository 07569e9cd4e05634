"""Index generations in Azure AI Search (REST API 2024-07-01, via httpx), behind the same IndexBackend.

One generation is one search index named ``<app>-<generation>`` (lowercase). It is created with
``If-None-Match: *``, so an existing index is never updated: the baseline's index keeps serving while the
candidate's is filled beside it. Chunks are uploaded in batches; a metadata document (``kind: meta``) is
uploaded last and marks the generation complete, so a build that crashed half-way is finished on the next
run (uploads are idempotent by key) and never reported as usable before then. Searches filter on
``kind eq 'chunk'`` and return Azure's ``@search.score`` (BM25, higher is better).

Paths are the OData forms of the 2024-07-01 spec (``/indexes('name')/docs/search.post.search``,
``/docs/search.index``, ``/docs('key')``). The httpx client is passed in (the endpoint is its
``base_url``, the api-key one of its headers); every HTTP or transport error is translated here, in
:func:`_raise_for` and :func:`_send`, into modelshift's exception tree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from modelshift.clock import Clock
from modelshift.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PlatformError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.grounding.chunking import Chunk, Chunker
from modelshift.grounding.corpus import Corpus
from modelshift.grounding.index import (
    CHUNKER_VERSION,
    ChunkCheck,
    GenerationInfo,
    Hit,
    check_app_name,
    generation_id,
)

API_VERSION = "2024-07-01"
META_KEY = "meta"
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,126}[a-z0-9]$")
_PARAMS = {"api-version": API_VERSION}

#: the index schema every generation gets: key, filterable kind/document, searchable text and headings
FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "Edm.String", "key": True, "searchable": False, "filterable": True},
    {"name": "kind", "type": "Edm.String", "searchable": False, "filterable": True},
    {"name": "document", "type": "Edm.String", "searchable": False, "filterable": True},
    {"name": "position", "type": "Edm.Int32", "searchable": False, "filterable": False, "sortable": True},
    {"name": "start", "type": "Edm.Int32", "searchable": False, "filterable": False},
    {"name": "end", "type": "Edm.Int32", "searchable": False, "filterable": False},
    {"name": "token_count", "type": "Edm.Int32", "searchable": False, "filterable": False},
    {"name": "headings", "type": "Edm.String", "searchable": True, "filterable": False},
    {"name": "text", "type": "Edm.String", "searchable": True, "filterable": False},
    {"name": "meta", "type": "Edm.String", "searchable": False, "filterable": False},
]


def index_name(app: str, generation: str) -> str:
    """The Azure AI Search index of one generation: ``<app>-<generation>`` in lowercase."""
    name = f"{check_app_name(app)}-{generation}".lower().replace("_", "-").replace(".", "-")
    if not _INDEX_NAME.match(name) or "--" in name:
        raise ConfigError(
            f"cannot name an Azure AI Search index after app {app!r} and generation {generation!r} "
            f"({name!r}: lowercase letters, digits and single dashes, 2-128 characters)"
        )
    return name


def _error_code(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
        err = body.get("error", {}) if isinstance(body, dict) else {}
        return err.get("code"), str(err.get("message") or response.text[:300])
    except (ValueError, AttributeError):
        return None, response.text[:300]


def _raise_for(response: httpx.Response, what: str) -> None:
    """Translate a non-2xx Azure AI Search answer into modelshift's error tree."""
    status = response.status_code
    if status < 400:
        return
    code, message = _error_code(response)
    text = f"Azure AI Search {what}: {status} {code or ''} {message}".replace("  ", " ").strip()
    kwargs: dict[str, Any] = {"status_code": status, "code": code, "request": what}
    if status in (401, 403):
        raise AuthError(f"{text}; check the search service's api-key or the identity's role", **kwargs)
    if status == 429 or (status == 503 and "retry-after" in response.headers):
        retry = response.headers.get("retry-after")
        wait = float(retry) if retry and retry.replace(".", "", 1).isdigit() else None
        raise ThrottledError(f"{text}; retry later", retry_after=wait, **kwargs)
    if status >= 500:
        raise TransientPlatformError(f"{text}; retry with backoff", **kwargs)
    if status == 400:
        raise BadRequestError(text, **kwargs)
    raise PlatformError(text, **kwargs)


class AzureSearchGeneration:
    """One generation in Azure AI Search; a Retriever."""

    def __init__(self, client: httpx.Client, name: str, info: GenerationInfo) -> None:
        self._client = client
        self.name = name
        self.info = info

    def search(self, query: str, top_k: int) -> list[Hit]:
        """Azure's full-text search over chunk text and headings, best first."""
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (got {top_k})")
        if not query.strip():
            return []
        body = {
            "search": query,
            "queryType": "simple",
            "searchMode": "any",
            "searchFields": "text,headings",
            "filter": "kind eq 'chunk'",
            "select": "id,document,text",
            "top": top_k,
        }
        response = _send(
            self._client, "POST", f"/indexes('{self.name}')/docs/search.post.search", "search documents", body
        )
        _raise_for(response, f"search in index {self.name}")
        return [
            Hit(
                chunk_id=row["id"],
                document=row["document"],
                text=row["text"],
                score=float(row["@search.score"]),
            )
            for row in response.json().get("value", [])
        ]


def _send(
    client: httpx.Client,
    method: str,
    path: str,
    what: str,
    body: Any = None,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request with the api-version; transport failures become TransientPlatformError."""
    try:
        return client.request(method, path, params=params or _PARAMS, json=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise TransientPlatformError(
            f"Azure AI Search {what} timed out ({exc}); retry", request=what
        ) from exc
    except httpx.TransportError as exc:
        raise TransientPlatformError(
            f"Azure AI Search {what} failed to connect ({exc}); check the endpoint and retry", request=what
        ) from exc


class AzureSearchBackend:
    """Generations as Azure AI Search indexes; an IndexBackend over an httpx client pointed at the service."""

    def __init__(self, client: httpx.Client, clock: Clock, *, batch_size: int = 500) -> None:
        if not 1 <= batch_size <= 1000:  # the service takes at most 1000 actions per batch
            raise ConfigError(f"batch_size {batch_size} must be between 1 and 1000")
        self._client = client
        self.clock = clock
        self.batch_size = batch_size

    def _meta(self, name: str) -> GenerationInfo | None:
        response = _send(
            self._client, "GET", f"/indexes('{name}')/docs('{META_KEY}')", "get generation metadata"
        )
        if response.status_code == 404:
            return None  # no index, or a build that never finished
        _raise_for(response, f"get metadata of index {name}")
        try:
            meta = json.loads(response.json()["meta"])
            meta.pop("chunker_version", None)
            return GenerationInfo(location=f"azure-search:{name}", **meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise PlatformError(
                f"index {name} has a malformed metadata document ({exc!r}); delete the index and rebuild",
                request="get generation metadata",
            ) from exc

    def build(
        self, app: str, corpus: Corpus, chunker: Chunker, *, validate: ChunkCheck | None = None
    ) -> GenerationInfo:
        """Create and fill the generation's index unless a complete one exists (then return it).

        ``validate`` sees the chunks before the index is created; an error it raises stops the build.
        """
        gen = generation_id(
            corpus.digest, chunker.encoding.name, chunker.chunk_tokens, chunker.overlap_tokens
        )
        name = index_name(app, gen)
        existing = self._meta(name)
        if existing is not None:
            return existing
        chunks = chunker.chunk_corpus(corpus)
        if validate is not None:
            validate(chunks)
        create = _send(
            self._client,
            "PUT",
            f"/indexes('{name}')",
            "create index",
            {"name": name, "fields": FIELDS},
            headers={"If-None-Match": "*", "Prefer": "return=representation"},
        )
        # 412: the index exists already (a crashed or concurrent build of the same generation): fill it
        if create.status_code != 412:
            _raise_for(create, f"create index {name}")
        for batch in _batches(chunks, self.batch_size):
            self._upload(name, [_chunk_doc(c, i) for i, c in batch])
        info = GenerationInfo(
            app=app,
            generation=gen,
            corpus_digest=corpus.digest,
            tokenizer=chunker.encoding.name,
            chunk_tokens=chunker.chunk_tokens,
            overlap_tokens=chunker.overlap_tokens,
            documents=len(corpus.documents),
            chunks=len(chunks),
            created_at=self.clock().isoformat(),
            location=f"azure-search:{name}",
        )
        meta = json.dumps(_meta_fields(info), sort_keys=True)
        self._upload(name, [{"@search.action": "upload", "id": META_KEY, "kind": "meta", "meta": meta}])
        return info

    def _upload(self, name: str, docs: list[dict[str, Any]]) -> None:
        response = _send(
            self._client, "POST", f"/indexes('{name}')/docs/search.index", "index documents", {"value": docs}
        )
        _raise_for(response, f"upload to index {name}")
        failed = [r for r in response.json().get("value", []) if not r.get("status")]
        if failed:  # 207: some documents were refused
            detail = "; ".join(
                f"{r.get('key')}: {r.get('statusCode')} {r.get('errorMessage')}" for r in failed[:5]
            )
            retryable = all(r.get("statusCode") in (409, 422, 503) for r in failed)
            cls = TransientPlatformError if retryable else PlatformError
            raise cls(
                f"Azure AI Search refused {len(failed)} of {len(docs)} documents for index {name} "
                f"({detail}); the generation is incomplete and will be finished by the next build",
                status_code=response.status_code,
                request="index documents",
            )

    def open(self, app: str, generation: str) -> AzureSearchGeneration:
        """A retriever over a complete generation; NotFoundError when it does not exist or is unfinished."""
        name = index_name(app, generation)
        info = self._meta(name)
        if info is None:
            raise NotFoundError(
                f"index generation {generation} of {app} (Azure AI Search index {name}) does not exist or "
                "was not finished; build it with the prepare stage",
                app=app,
                generation=generation,
            )
        return AzureSearchGeneration(self._client, name, info)

    def list_generations(self, app: str) -> list[GenerationInfo]:
        """Every complete generation of ``app`` in the service, oldest first."""
        prefix = index_name(app, "gen-0000000000000000")[: -len("0000000000000000")]
        response = _send(
            self._client, "GET", "/indexes", "list indexes", params={**_PARAMS, "$select": "name"}
        )
        _raise_for(response, "list indexes")
        infos = []
        for row in response.json().get("value", []):
            name = str(row.get("name", ""))
            if name.startswith(prefix) and len(name) == len(prefix) + 16:
                info = self._meta(name)
                if info is not None:
                    infos.append(info)
        return sorted(infos, key=lambda i: (i.created_at, i.generation))


def _meta_fields(info: GenerationInfo) -> dict[str, Any]:
    return {
        "app": info.app,
        "generation": info.generation,
        "corpus_digest": info.corpus_digest,
        "tokenizer": info.tokenizer,
        "chunk_tokens": info.chunk_tokens,
        "overlap_tokens": info.overlap_tokens,
        "documents": info.documents,
        "chunks": info.chunks,
        "created_at": info.created_at,
        "chunker_version": CHUNKER_VERSION,
    }


def _chunk_doc(chunk: Chunk, position: int) -> dict[str, Any]:
    return {
        "@search.action": "upload",
        "id": chunk.id,
        "kind": "chunk",
        "document": chunk.document,
        "position": position,
        "start": chunk.start,
        "end": chunk.end,
        "token_count": chunk.token_count,
        "headings": " / ".join(chunk.headings),
        "text": chunk.text,
    }


def _batches(chunks: Sequence[Chunk], size: int) -> Iterator[list[tuple[int, Chunk]]]:
    for offset in range(0, len(chunks), size):
        yield list(enumerate(chunks[offset : offset + size], start=offset))
