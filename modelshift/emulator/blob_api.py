"""A minimal Azure Blob service for the emulator's workspaces: the storage account behind each
workspace's default datastore, at ``/_blob/{account}/`` (``https://{account}.blob.core.windows.net`` routed
here by :func:`modelshift.platforms.azure.transport.routing_transport`).

Put Blob (block blobs, one shot, ``If-None-Match: *`` refuses to overwrite), Get Blob / Get Blob
Properties and List Blobs with a prefix, with Azure Storage's XML error bodies and ``x-ms-error-code``.
The credential is checked loosely but must be there: a SharedKey signature for the account, a SAS
(``sig=``) or a scenario bearer token.
"""

from __future__ import annotations

from email.utils import format_datetime
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelshift.emulator.aml_state import Blob, Workspace
from modelshift.emulator.web import world_of

router = APIRouter(prefix="/_blob/{account}")


def _storage_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>'
        f"{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml", headers={"x-ms-error-code": code})


def _storage_workspace(request: Request, account: str) -> Workspace | Response:
    """The workspace whose datastore lives in ``account``, after a loose check of the credential: a
    SharedKey signature for this account, a SAS (``sig=``) or a scenario bearer token."""
    world = world_of(request)
    found = next((w for w in world.workspaces.values() if w.spec.account_name == account), None)
    if found is None:
        return _storage_error(404, "ResourceNotFound", f"The storage account {account} does not exist.")
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    ok = (
        (scheme == "SharedKey" and value.startswith(f"{account}:") and len(value) > len(account) + 1)
        or "sig" in request.query_params
        or (scheme.lower() == "bearer" and value.strip() in world.scenario.auth.bearer_tokens)
    )
    if not ok:
        return _storage_error(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is "
            "formed correctly including the signature. (modelshift emulator: send SharedKey, a SAS or a "
            "bearer)",
        )
    return found


def _blob_headers(blob: Blob) -> dict[str, str]:
    return {
        "ETag": blob.etag,
        "Last-Modified": format_datetime(blob.created_at, usegmt=True),
        "x-ms-creation-time": format_datetime(blob.created_at, usegmt=True),
        "x-ms-blob-type": "BlockBlob",
        "x-ms-version": "2025-01-05",
    }


@router.put("/{container}/{path:path}")
async def put_blob(request: Request, account: str, container: str, path: str) -> Response:
    """Put Blob (block blob, one shot); ``If-None-Match: *`` refuses to overwrite (409)."""
    found = _storage_workspace(request, account)
    if isinstance(found, Response):
        return found
    if container != found.spec.container:
        return _storage_error(404, "ContainerNotFound", "The specified container does not exist.")
    if request.headers.get("x-ms-blob-type") != "BlockBlob":
        return _storage_error(400, "InvalidHeaderValue", "x-ms-blob-type must be BlockBlob.")
    content = await request.body()
    world = world_of(request)
    key = f"{container}/{path}"
    with world.lock:
        if request.headers.get("if-none-match") == "*" and key in found.blobs:
            return _storage_error(409, "BlobAlreadyExists", "The specified blob already exists.")
        blob = Blob(
            content, request.headers.get("x-ms-blob-content-type", "application/octet-stream"), world.clock()
        )
        found.blobs[key] = blob
        found.blob_puts += 1
    return Response(status_code=201, headers={**_blob_headers(blob), "x-ms-request-server-encrypted": "true"})


@router.api_route("/{container}/{path:path}", methods=["GET", "HEAD"])
def get_blob(request: Request, account: str, container: str, path: str) -> Response:
    """Get Blob / Get Blob Properties."""
    found = _storage_workspace(request, account)
    if isinstance(found, Response):
        return found
    blob = found.blobs.get(f"{container}/{path}")
    if blob is None:
        return _storage_error(404, "BlobNotFound", "The specified blob does not exist.")
    headers = {**_blob_headers(blob), "Content-Type": blob.content_type}
    if request.method == "HEAD":
        return Response(status_code=200, headers={**headers, "Content-Length": str(len(blob.content))})
    return Response(blob.content, status_code=200, headers=headers)


@router.get("/{container}")
def list_blobs(request: Request, account: str, container: str) -> Response:
    """List Blobs (``restype=container&comp=list``), filtered by ``prefix``; one page."""
    found = _storage_workspace(request, account)
    if isinstance(found, Response):
        return found
    q = request.query_params
    if q.get("restype") != "container" or q.get("comp") != "list":
        return _storage_error(400, "UnsupportedQueryParameter", "Only restype=container&comp=list is served.")
    if container != found.spec.container:
        return _storage_error(404, "ContainerNotFound", "The specified container does not exist.")
    prefix = q.get("prefix", "")
    items = []
    for key, blob in sorted(found.blobs.items()):
        name = key.split("/", 1)[1]
        if not key.startswith(container + "/") or not name.startswith(prefix):
            continue
        modified = format_datetime(blob.created_at, usegmt=True)
        items.append(
            f"<Blob><Name>{escape(name)}</Name><Properties><Creation-Time>{modified}</Creation-Time>"
            f"<Last-Modified>{modified}</Last-Modified><Etag>{escape(blob.etag)}</Etag>"
            f"<Content-Length>{len(blob.content)}</Content-Length>"
            f"<Content-Type>{escape(blob.content_type)}</Content-Type><BlobType>BlockBlob</BlobType>"
            "</Properties></Blob>"
        )
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ServiceEndpoint="https://{account}.blob.core.windows.net/" '
        f'ContainerName="{escape(container)}"><Prefix>{escape(prefix)}</Prefix>'
        f"<Blobs>{''.join(items)}</Blobs><NextMarker /></EnumerationResults>"
    )
    return Response(body, media_type="application/xml")
