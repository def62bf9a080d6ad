"""Immich's HTTP API as the gateway uses it: who is calling, their assets, the server version,
jobs, tags, and forwarding a search unchanged.

Calls for a user carry that user's own credentials, in whichever form the client sent them, so
Immich checks permissions itself. Transport failures become a fast 503/504 naming the server.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from aio_common.errors import Answered, BackendFailed, BackendTimedOut, BackendUnreachable, BadRequest
from gateway.immich.facts import Version

log = logging.getLogger(__name__)

# Every way Immich accepts a caller: the session cookie, API key and bearer token, the headers
# of older mobile apps and shared sessions, and the query parameters.
CREDENTIAL_HEADERS = ("cookie", "x-api-key", "authorization", "x-immich-user-token", "x-immich-session-token")
CREDENTIAL_PARAMS = ("apiKey", "sessionKey")
# Hop-by-hop headers are about one connection, never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
}
SEARCH_PATH = "/api/search/smart"


@dataclass(frozen=True)
class Credentials:
    headers: dict[str, str]
    params: dict[str, str]

    @classmethod
    def of(cls, request: Request) -> Credentials:
        # Stripped: a value with a trailing space ("Bearer ") is refused by HTTP clients.
        return cls(
            {name: value.strip() for name in CREDENTIAL_HEADERS if (value := request.headers.get(name)) is not None},
            {name: value for name in CREDENTIAL_PARAMS if (value := request.query_params.get(name)) is not None},
        )

    @classmethod
    def api_key(cls, key: str) -> Credentials:
        return cls({"x-api-key": key}, {})


@dataclass(frozen=True)
class Caller:
    """Who searches, as Immich should see them: their credentials (Immich checks each call made
    for them) and the headers and query a search passed on to Immich carries."""

    credentials: Credentials
    headers: list[tuple[bytes, bytes]]
    query: str = ""

    @classmethod
    def of(cls, request: Request) -> Caller:
        return cls(Credentials.of(request), _passed_headers(request), request.url.query)

    @classmethod
    def api_key(cls, key: str) -> Caller:
        """A caller by API key alone (a search run without a web server)."""
        return cls(Credentials.api_key(key), [(b"x-api-key", key.encode())])


class JobNotStarted(Exception):
    """Immich answered a queue start with 'already running': the start is still owed."""


class ImmichClient:
    """The Immich server (IMMICH_SERVER_URL), called over its HTTP API."""

    def __init__(self, base_url: str, connect_timeout: float, read_timeout: float, concurrency: int) -> None:
        self.base_url = base_url
        self.client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(read_timeout, connect=connect_timeout))
        self.concurrency = concurrency

    async def close(self) -> None:
        await self.client.aclose()

    async def me(self, caller: Credentials) -> dict[str, Any]:
        """The caller's UserAdminResponseDto; Immich's own 401/403 (Answered) when it does not
        know them."""
        response = await self._send("GET", "/api/users/me", headers=caller.headers, params=caller.params)
        if response.status_code in (401, 403):
            raise Answered(response.status_code, response.content, response.headers.get("content-type"))
        if response.status_code != 200:
            raise BackendFailed(f"Immich server: /api/users/me answered {response.status_code}")
        user: dict[str, Any] = response.json()
        return user

    async def assets(self, ids: list[str], caller: Credentials) -> list[dict[str, Any]]:
        """AssetResponseDto of each id, in the given order; ids Immich refuses are left out."""
        limit = asyncio.Semaphore(self.concurrency)

        async def one(asset_id: str) -> dict[str, Any] | None:
            async with limit:
                path = f"/api/assets/{asset_id}"
                response = await self._send("GET", path, headers=caller.headers, params=caller.params)
            return response.json() if response.status_code == 200 else None

        found = await asyncio.gather(*(one(asset_id) for asset_id in ids))
        return [asset for asset in found if asset is not None]

    async def server_version(self) -> Version:
        """GET /api/server/version (open to anyone). ApiError when unreachable, ValueError when odd."""
        response = await self._send("GET", "/api/server/version")
        if response.status_code != 200:
            raise ValueError(f"/api/server/version answered {response.status_code}")
        return Version.of(response.json())

    async def start_job(self, queue: str, admin: Credentials) -> None:
        """Start one of Immich's queues for the assets missing its result (no force), through
        PUT /api/jobs/{queue}, which every release from 2.2 to 3.2 serves. (PUT /api/queues/{queue}
        of 3.x only pauses and resumes: it answers 200 to a start command and does nothing.)
        JobNotStarted when the queue is already running; ApiError on any other refusal."""
        response = await self._send(
            "PUT", f"/api/jobs/{queue}", json={"command": "start", "force": False}, headers=admin.headers
        )
        if response.status_code == 400 and "already running" in response.text.lower():
            raise JobNotStarted(queue)
        if response.status_code >= 300:
            raise BackendFailed(
                f"Immich refused to start the {queue} queue ({response.status_code}): {response.text[:300]}"
            )

    async def untag(self, tag_id: str, asset_ids: list[str], owner: Credentials) -> None:
        """DELETE /api/tags/{id}/assets as the tag's owner: Immich updates tag_asset and the
        asset's stored tag list, and queues the sidecar write."""
        response = await self._send(
            "DELETE", f"/api/tags/{tag_id}/assets", json={"ids": asset_ids}, headers=owner.headers
        )
        if response.status_code >= 300:
            raise BackendFailed(f"Immich refused to untag ({response.status_code}): {response.text[:300]}")

    async def search(self, caller: Caller, body: bytes) -> tuple[int, bytes]:
        """POST /api/search/smart as `caller` with `body`; (status, answer)."""
        response = await self._send("POST", SEARCH_PATH, content=body, params=caller.query, headers=caller.headers)
        return response.status_code, response.content

    async def forward(self, request: Request, body: bytes) -> StreamingResponse:
        """Send the request to Immich unchanged and stream its answer back unchanged."""
        response = await self._send(
            request.method,
            request.url.path,
            stream=True,
            params=request.url.query,
            headers=_passed_headers(request),
            content=body,
        )
        streamed = StreamingResponse(
            response.aiter_raw(), status_code=response.status_code, background=BackgroundTask(response.aclose)
        )
        streamed.raw_headers = [(k.lower(), v) for k, v in response.headers.raw if k.decode().lower() not in HOP_BY_HOP]
        return streamed

    async def _send(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        """One call to Immich; an unreachable or slow server is a fast 503 or 504 naming it."""
        try:
            return await self.client.send(self.client.build_request(method, path, **kwargs), stream=stream)
        except httpx.LocalProtocolError as exc:  # a header no HTTP client may send on
            raise BadRequest(f"The request has a header that cannot be passed on to Immich: {exc}") from None
        except httpx.TimeoutException:
            raise BackendTimedOut(f"Immich server at {self.base_url} timed out ({path})") from None
        except httpx.TransportError as exc:
            raise BackendUnreachable(f"Immich server at {self.base_url} cannot be reached: {exc!r}") from None


def _passed_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """The caller's headers as Immich should see them: not hop-by-hop, and no content-length,
    which is recomputed (a `clip:` query is forwarded with its prefix removed)."""
    return [(k, v.strip()) for k, v in request.headers.raw if k.decode().lower() not in HOP_BY_HOP | {"content-length"}]
