"""Immich's HTTP API as the search needs it: who is calling, their assets, and forwarding.

Every call carries the caller's own credentials, so Immich checks permissions itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from aio_common.http import ApiError

# Headers that identify the caller to Immich (cookie immich_access_token, API key, bearer token).
CREDENTIAL_HEADERS = ("cookie", "x-api-key", "authorization")
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


class ImmichRefused(Exception):
    """Immich answered the caller's credentials with 401/403: passed back as is."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = Response(
            response.content, status_code=response.status_code, media_type=response.headers.get("content-type")
        )


class ImmichApi:
    def __init__(self, base_url: str, connect_timeout: float, read_timeout: float, concurrency: int) -> None:
        self.base_url = base_url
        self.client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(read_timeout, connect=connect_timeout))
        self.concurrency = concurrency

    async def close(self) -> None:
        await self.client.aclose()

    async def me(self, credentials: dict[str, str]) -> dict[str, Any]:
        response = await self._send("GET", "/api/users/me", headers=credentials)
        if response.status_code in (401, 403):
            raise ImmichRefused(response)
        if response.status_code != 200:
            raise ApiError(502, f"Immich server: /api/users/me answered {response.status_code}")
        return response.json()

    async def assets(self, ids: list[str], credentials: dict[str, str]) -> list[dict[str, Any]]:
        """AssetResponseDto of each id, in the given order; ids Immich refuses are left out."""
        limit = asyncio.Semaphore(self.concurrency)

        async def one(asset_id: str) -> dict[str, Any] | None:
            async with limit:
                response = await self._send("GET", f"/api/assets/{asset_id}", headers=credentials)
            return response.json() if response.status_code == 200 else None

        found = await asyncio.gather(*(one(asset_id) for asset_id in ids))
        return [asset for asset in found if asset is not None]

    async def start_queue(self, queue: str, admin_key: str) -> None:
        """Start one of Immich's job queues for the assets missing its result (no force).
        Immich 2.x serves it at /api/jobs/{queue}, later releases at /api/queues/{queue}."""
        command = {"command": "start", "force": False}
        for path in (f"/api/jobs/{queue}", f"/api/queues/{queue}"):
            response = await self._send("PUT", path, json=command, headers={"x-api-key": admin_key})
            if response.status_code != 404:
                break
        if response.status_code >= 300:
            raise ApiError(
                502, f"Immich refused to start the {queue} queue ({response.status_code}): {response.text[:300]}"
            )

    async def search(self, request: Request, body: bytes) -> tuple[int, bytes]:
        """POST /api/search/smart with the caller's headers and `body`; (status, answer)."""
        response = await self._send("POST", "/api/search/smart", content=body, headers=_passed_headers(request))
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
        except httpx.TimeoutException:
            raise ApiError(504, f"Immich server at {self.base_url} timed out ({path})") from None
        except httpx.TransportError as exc:
            raise ApiError(503, f"Immich server at {self.base_url} cannot be reached: {exc!r}") from None


def _passed_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """The caller's headers as Immich should see them: not hop-by-hop, and no content-length,
    which is recomputed (a `clip:` query is forwarded with its prefix removed)."""
    return [(k, v) for k, v in request.headers.raw if k.decode().lower() not in HOP_BY_HOP | {"content-length"}]


def credentials_of(request: Request) -> dict[str, str]:
    return {name: value for name in CREDENTIAL_HEADERS if (value := request.headers.get(name)) is not None}
