"""Azure AI Search adapter: request shapes per REST API 2024-07-01 (httpx.MockTransport), resume, errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshift.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PlatformError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.grounding.chunking import Chunker
from modelshift.grounding.corpus import Corpus, load_corpus
from modelshift.grounding.index import Retriever, generation_id
from modelshift.grounding.search_azure import API_VERSION, AzureSearchBackend, index_name
from tests.grounding.conftest import corpus_dir

ENDPOINT = "https://contoso-search.search.windows.net"
KEY = "test-admin-key"
_INDEX = re.compile(r"^/indexes\('([^']+)'\)(.*)$")


def _err(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


class FakeSearchService:
    """Just enough of Azure AI Search's data plane to index and query documents; records every request."""

    def __init__(self) -> None:
        self.indexes: dict[str, dict[str, Any]] = {}
        self.docs: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[httpx.Request] = []
        self.fail_upload: Callable[[int], httpx.Response | None] = lambda n: None
        self.uploads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.params["api-version"] == API_VERSION
        assert request.headers["api-key"] == KEY
        path = request.url.path
        if path == "/indexes" and request.method == "GET":
            assert request.url.params["$select"] == "name"
            return httpx.Response(200, json={"value": [{"name": n} for n in self.indexes]})
        m = _INDEX.match(path)
        assert m is not None, path
        name, rest = m.groups()
        if rest == "" and request.method == "PUT":
            if request.headers.get("If-None-Match") == "*" and name in self.indexes:
                return _err(412, "PreconditionFailed", "The index already exists.")
            body = json.loads(request.content)
            self.indexes[name] = body
            self.docs[name] = {}
            return httpx.Response(201, json=body)
        if name not in self.indexes:
            return _err(404, "ResourceNotFound", f"No index with the name '{name}' was found in the service.")
        docs = self.docs[name]
        if rest == "/docs/search.index" and request.method == "POST":
            self.uploads += 1
            failure = self.fail_upload(self.uploads)
            if failure is not None and failure.status_code >= 500:
                return failure
            results = []
            for action in json.loads(request.content)["value"]:
                assert action["@search.action"] == "upload"
                if failure is not None and action["id"] != "meta":
                    refused = {"key": action["id"], "status": False, "statusCode": failure.status_code}
                    results.append({**refused, "errorMessage": "refused"})
                    continue
                docs[action["id"]] = {k: v for k, v in action.items() if k != "@search.action"}
                results.append({"key": action["id"], "status": True, "errorMessage": None, "statusCode": 201})
            status = 207 if any(not r["status"] for r in results) else 200
            return httpx.Response(status, json={"value": results})
        key = re.fullmatch(r"/docs\('([^']+)'\)", rest)
        if key is not None and request.method == "GET":
            doc = docs.get(key.group(1))
            if doc is None:
                return _err(404, "DocumentNotFound", "Document not found.")
            return httpx.Response(200, json=doc)
        if rest == "/docs/search.post.search" and request.method == "POST":
            body = json.loads(request.content)
            assert body["filter"] == "kind eq 'chunk'"
            words = set(re.findall(r"\w+", body["search"].lower()))
            scored = []
            for doc in docs.values():
                if doc.get("kind") != "chunk":
                    continue
                hay = re.findall(r"\w+", (doc["text"] + " " + doc["headings"]).lower())
                score = sum(hay.count(w) for w in words) / (1 + len(hay) / 100)
                if score:
                    scored.append((score, doc))
            scored.sort(key=lambda p: -p[0])
            fields = body["select"].split(",")
            value = [{"@search.score": s, **{f: d[f] for f in fields}} for s, d in scored[: body["top"]]]
            return httpx.Response(200, json={"value": value})
        raise AssertionError(f"unexpected {request.method} {path}")


@pytest.fixture
def service() -> FakeSearchService:
    return FakeSearchService()


def _backend(handler: Callable[[httpx.Request], httpx.Response], batch_size: int = 500) -> AzureSearchBackend:
    client = httpx.Client(base_url=ENDPOINT, headers={"api-key": KEY}, transport=httpx.MockTransport(handler))
    return AzureSearchBackend(client, lambda: datetime(2026, 3, 1, tzinfo=UTC), batch_size=batch_size)


def _small_corpus(tmp_path: Path) -> Corpus:
    root = tmp_path / "corpus"
    root.mkdir(parents=True)
    (root / "backup.md").write_text("# Backups\n\nNightly backups run at 02:00.\n", encoding="utf-8")
    (root / "billing.md").write_text("# Billing\n\nInvoices are emailed monthly.\n", encoding="utf-8")
    return load_corpus(root)


def test_build_request_shapes(service: FakeSearchService) -> None:
    corpus = load_corpus(corpus_dir("support-chat"))
    chunker = Chunker("o200k_base", 256, 32)
    info = _backend(service, batch_size=20).build("support-chat", corpus, chunker)
    gen = generation_id(corpus.digest, "o200k_base", 256, 32)
    name = f"support-chat-{gen}"
    assert (info.generation, info.location, info.chunks) == (
        gen,
        f"azure-search:{name}",
        len(chunker.chunk_corpus(corpus)),
    )
    methods = [(r.method, r.url.path) for r in service.requests]
    assert methods[0] == ("GET", f"/indexes('{name}')/docs('meta')")
    assert methods[1] == ("PUT", f"/indexes('{name}')")
    uploads = [r for r in service.requests if r.url.path.endswith("/docs/search.index")]
    assert len(uploads) == -(-info.chunks // 20) + 1  # chunk batches, then the metadata document
    put = service.requests[1]
    assert put.headers["If-None-Match"] == "*"
    assert put.headers["Prefer"] == "return=representation"
    schema = json.loads(put.content)
    assert schema["name"] == name
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["id"]["key"] is True and fields["id"]["type"] == "Edm.String"
    assert fields["text"]["searchable"] is True and fields["kind"]["filterable"] is True
    first = json.loads(uploads[0].content)["value"]
    assert len(first) == 20
    assert first[0]["@search.action"] == "upload" and first[0]["kind"] == "chunk"
    assert set(first[0]) >= {"id", "document", "start", "end", "token_count", "text", "headings", "position"}
    meta = json.loads(uploads[-1].content)["value"]
    assert [d["id"] for d in meta] == ["meta"]
    assert json.loads(meta[0]["meta"])["corpus_digest"] == corpus.digest


def test_search_request_and_hits(service: FakeSearchService, tmp_path: Path) -> None:
    backend = _backend(service)
    info = backend.build("app", _small_corpus(tmp_path), Chunker("o200k_base", 64, 8))
    gen = backend.open("app", info.generation)
    assert isinstance(gen, Retriever)
    assert gen.info == info
    hits = gen.search("When do nightly backups run?", 3)
    body = json.loads(service.requests[-1].content)
    assert body == {
        "search": "When do nightly backups run?",
        "queryType": "simple",
        "searchMode": "any",
        "searchFields": "text,headings",
        "filter": "kind eq 'chunk'",
        "select": "id,document,text",
        "top": 3,
    }
    assert (
        service.requests[-1].url.path
        == f"/indexes('{index_name('app', info.generation)}')/docs/search.post.search"
    )
    assert hits[0].document == "backup.md" and hits[0].score > 0
    before = len(service.requests)
    assert gen.search("   ", 3) == []
    assert len(service.requests) == before  # a blank query is not sent
    with pytest.raises(ConfigError, match="top_k"):
        gen.search("backups", 0)


def test_rebuild_reuses_a_complete_generation(service: FakeSearchService, tmp_path: Path) -> None:
    backend = _backend(service)
    first = backend.build("app", _small_corpus(tmp_path), Chunker("o200k_base", 64, 8))
    count = len(service.requests)
    again = backend.build("app", _small_corpus(tmp_path / "again"), Chunker("o200k_base", 64, 8))
    assert again == first
    assert [r.method for r in service.requests[count:]] == ["GET"]  # only the metadata lookup


def test_crash_mid_build_is_finished_by_the_next_build(service: FakeSearchService, tmp_path: Path) -> None:
    corpus = load_corpus(corpus_dir("hr-handbook"))
    chunker = Chunker("cl100k_base", 128, 16)
    service.fail_upload = lambda n: _err(503, "ServiceUnavailable", "busy") if n == 2 else None
    backend = _backend(service, batch_size=10)
    with pytest.raises(TransientPlatformError, match="503") as info:
        backend.build("hr", corpus, chunker)
    assert info.value.retryable
    gen = generation_id(corpus.digest, "cl100k_base", 128, 16)
    with pytest.raises(NotFoundError, match="does not exist or was not finished"):
        backend.open("hr", gen)
    assert backend.list_generations("hr") == []
    service.fail_upload = lambda n: None
    done = backend.build("hr", corpus, chunker)
    put = [r for r in service.requests if r.method == "PUT"]
    assert len(put) == 2  # the second create got 412 and the build went on filling the same index
    assert done.chunks == len(service.docs[index_name("hr", gen)]) - 1
    assert backend.open("hr", gen).search("parental leave weeks", 2)


@pytest.mark.parametrize(("per_doc_status", "error"), [(400, PlatformError), (422, TransientPlatformError)])
def test_partially_refused_batch(
    service: FakeSearchService, tmp_path: Path, per_doc_status: int, error: type[PlatformError]
) -> None:
    service.fail_upload = lambda n: httpx.Response(per_doc_status)
    with pytest.raises(error, match=r"refused 2 of 2 documents .* incomplete") as info:
        _backend(service).build("app", _small_corpus(tmp_path), Chunker("o200k_base", 64, 8))
    assert info.value.retryable is (per_doc_status == 422)
    assert info.value.status_code == 207


def test_generations_side_by_side_and_other_apps_ignored(service: FakeSearchService, tmp_path: Path) -> None:
    backend = _backend(service)
    corpus = _small_corpus(tmp_path)
    old = backend.build("app", corpus, Chunker("cl100k_base", 64, 8))
    baseline = backend.open("app", old.generation)
    new = backend.build("app", corpus, Chunker("o200k_base", 64, 8))
    backend.build("app-two", corpus, Chunker("o200k_base", 64, 8))
    service.indexes["app-unrelated"] = {}
    assert {g.generation for g in backend.list_generations("app")} == {old.generation, new.generation}
    assert baseline.search("invoices", 1)[0].document == "billing.md"


def _answer(response: httpx.Response) -> AzureSearchBackend:
    return _backend(lambda request: response)


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        (_err(401, "Unauthorized", "bad key"), AuthError, "api-key"),
        (_err(403, "Forbidden", "no role"), AuthError, "403 Forbidden no role"),
        (_err(429, "Throttled", "slow down", **{"retry-after": "7"}), ThrottledError, "retry later"),
        (_err(503, "Busy", "wait", **{"retry-after": "2"}), ThrottledError, "503"),
        (_err(500, "InternalServerError", "boom"), TransientPlatformError, "retry with backoff"),
        (_err(400, "InvalidRequestParameter", "bad field"), BadRequestError, "InvalidRequestParameter"),
        (httpx.Response(409, text="conflict"), PlatformError, "409"),
    ],
)
def test_http_errors_are_translated(response: httpx.Response, error: type[PlatformError], text: str) -> None:
    with pytest.raises(error, match=text) as info:
        _answer(response).list_generations("app")
    assert info.value.status_code == response.status_code
    if isinstance(info.value, ThrottledError) and response.status_code == 429:
        assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")]
)
def test_transport_errors_are_transient(exc: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(TransientPlatformError) as info:
        _backend(handler).open("app", "gen-0123456789abcdef")
    assert info.value.retryable


def test_malformed_metadata_document(service: FakeSearchService, tmp_path: Path) -> None:
    backend = _backend(service)
    info = backend.build("app", _small_corpus(tmp_path), Chunker("o200k_base", 64, 8))
    service.docs[index_name("app", info.generation)]["meta"]["meta"] = "{not json"
    with pytest.raises(PlatformError, match="malformed metadata"):
        backend.open("app", info.generation)


@pytest.mark.parametrize(
    ("app", "expected"),
    [("support-chat", "support-chat-gen-0123456789abcdef"), ("My_App.v2", "my-app-v2-gen-0123456789abcdef")],
)
def test_index_names(app: str, expected: str) -> None:
    assert index_name(app, "gen-0123456789abcdef") == expected


@pytest.mark.parametrize("app", ["a--b", "x" * 120, "../up"])
def test_bad_index_names(app: str) -> None:
    with pytest.raises(ConfigError):
        index_name(app, "gen-0123456789abcdef")


@pytest.mark.parametrize("size", [0, 1001])
def test_batch_size_bounds(size: int) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        _backend(lambda r: httpx.Response(200), batch_size=size)


def test_validate_hook_runs_before_the_index_is_created(service: FakeSearchService, tmp_path: Path) -> None:
    def refuse(chunks: list[object]) -> None:
        raise ConfigError("no")

    with pytest.raises(ConfigError, match="no"):
        _backend(service).build("app", _small_corpus(tmp_path), Chunker("o200k_base", 64, 8), validate=refuse)
    assert [r.method for r in service.requests] == ["GET"]
    assert service.indexes == {}
