"""Backends and their replicas: pooled clients, health checks, least-busy choice, one retry.

A backend failure becomes an ApiError with a fast 5xx naming the backend and the cause:
unreachable -> 503, timeout -> 504, backend 5xx -> 502; a backend 4xx is passed back as is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from aio_common.http import ApiError

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 2.0


@dataclass(eq=False)
class Replica:
    url: str
    client: httpx.AsyncClient
    healthy: bool = True
    in_flight: int = 0
    last_error: str | None = None

    def state(self) -> dict[str, Any]:
        return {"url": self.url, "healthy": self.healthy, "inFlight": self.in_flight, "lastError": self.last_error}


@dataclass
class BackendReply:
    """A backend's answer, passed through without re-encoding."""

    status: int
    content: bytes
    content_type: str


@dataclass(eq=False)
class Backend:
    name: str
    replicas: list[Replica]
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, name: str, urls: list[str], *, connect_timeout: float, read_timeout: float, headers: Mapping[str, str]
    ) -> Backend:
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout)
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        return cls(
            name,
            [Replica(url, httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits)) for url in urls],
            headers,
        )

    def pick(self, exclude: set[Replica]) -> Replica | None:
        candidates = [r for r in self.replicas if r not in exclude]
        # Healthy first, then the fewest requests in flight; an unhealthy replica is still
        # tried when nothing else is left, since health may be a few seconds stale.
        return min(candidates, key=lambda r: (not r.healthy, r.in_flight), default=None)

    async def post(self, path: str, *, content: bytes, content_type: str) -> BackendReply:
        """POST to the least busy replica; on a connection error, timeout or 5xx retry once elsewhere."""
        tried: set[Replica] = set()
        failure = ApiError(503, f"{self.name}: no replica configured")
        for _ in range(min(2, len(self.replicas))):
            replica = self.pick(tried)
            if replica is None:
                break
            tried.add(replica)
            replica.in_flight += 1
            try:
                response = await replica.client.post(
                    path, content=content, headers={**self.headers, "content-type": content_type}
                )
            except httpx.TimeoutException as exc:
                failure = ApiError(504, f"{self.name} at {replica.url} timed out ({type(exc).__name__}).")
                replica.last_error = failure.message
                continue
            except httpx.TransportError as exc:
                failure = ApiError(503, f"{self.name} at {replica.url} cannot be reached: {exc!r}.")
                replica.healthy, replica.last_error = False, failure.message
                continue
            finally:
                replica.in_flight -= 1
            if response.status_code >= 500:
                failure = ApiError(
                    502, f"{self.name} at {replica.url} failed with {response.status_code}: {_message(response)}"
                )
                replica.last_error = failure.message
                continue
            return BackendReply(
                response.status_code, response.content, response.headers.get("content-type", "application/json")
            )
        log.warning("backend request failed", extra={"backend": self.name, "error": failure.message})
        raise failure

    async def check(self, replica: Replica) -> None:
        try:
            response = await replica.client.get("/ping", timeout=PING_TIMEOUT_S)
            healthy = response.status_code == 200
            error = None if healthy else f"/ping answered {response.status_code}"
        except httpx.HTTPError as exc:
            healthy, error = False, f"/ping failed: {exc!r}"
        if healthy != replica.healthy:
            log.info("replica %s", "up" if healthy else "down", extra={"backend": self.name, "url": replica.url})
        replica.healthy = healthy
        if error:
            replica.last_error = error

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(replica) for replica in self.replicas))

    async def close(self) -> None:
        await asyncio.gather(*(replica.client.aclose() for replica in self.replicas))

    def state(self) -> dict[str, Any]:
        return {"healthy": any(r.healthy for r in self.replicas), "replicas": [r.state() for r in self.replicas]}


def _message(response: httpx.Response) -> str:
    text = response.text[:500]
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else text
