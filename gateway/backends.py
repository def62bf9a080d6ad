"""Backends and their replicas: pooled clients, health checks, least-busy choice, one retry.

A backend failure becomes an ApiError with a fast 5xx naming the backend and the cause:
unreachable -> 503, timeout -> 504, backend 503 (it says why it cannot serve now) -> 503, other
backend 5xx -> 502; a backend 4xx is passed back as is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import orjson

from aio_common.errors import ApiError, BackendFailed, BackendTimedOut, BackendUnreachable, Unavailable
from gateway import metrics

log = logging.getLogger(__name__)

PING_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


@dataclass(eq=False)
class Replica:
    url: str
    healthy: bool = True
    in_flight: int = 0
    # The last failure, kept only until the replica next answers well.
    last_error: str | None = None
    last_error_at: datetime | None = None

    def failed(self, error: str) -> None:
        self.last_error, self.last_error_at = error, datetime.now(timezone.utc)

    def answered(self) -> None:
        self.last_error = self.last_error_at = None

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "inFlight": self.in_flight,
            "lastError": self.last_error,
            "lastErrorAt": self.last_error_at.isoformat(timespec="seconds") if self.last_error_at else None,
        }


@dataclass
class BackendReply:
    """A backend's answer, passed through without re-encoding."""

    status: int
    content: bytes
    content_type: str


@dataclass(eq=False)
class Backend:
    """One kind of backend: its replicas share a pooled keep-alive session (aiohttp: its C
    parser and direct socket writes forward an 800 kB preview in about half httpx's time)."""

    name: str
    replicas: list[Replica]
    session: aiohttp.ClientSession
    # A new connection for every request: the retry at a backend of one URL, so a Service that
    # spreads connections over pods chooses again, rather than a kept-alive connection to the
    # pod that just failed.
    fresh_session: aiohttp.ClientSession
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, name: str, urls: list[str], *, connect_timeout: float, read_timeout: float, headers: Mapping[str, str]
    ) -> Backend:
        # sock_read bounds the wait for the answer (inference time), connect the TCP set-up.
        timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        pooled, fresh = (
            aiohttp.ClientSession(
                timeout=timeout,
                connector=aiohttp.TCPConnector(limit=256, force_close=force_close),
                json_serialize=lambda v: orjson.dumps(v).decode(),
            )
            for force_close in (False, True)
        )
        for url in urls:
            metrics.REPLICA_UP.labels(name, url).set(1)  # as Replica assumes until a /ping says otherwise
        return cls(name, [Replica(url) for url in urls], pooled, fresh, headers)

    def pick(self, exclude: set[Replica]) -> Replica | None:
        candidates = [r for r in self.replicas if r not in exclude]
        # Healthy first, then the fewest requests in flight; an unhealthy replica is still
        # tried when nothing else is left, since health may be a few seconds stale.
        return min(candidates, key=lambda r: (not r.healthy, r.in_flight), default=None)

    async def post(self, path: str, *, content: bytes, content_type: str) -> BackendReply:
        """POST to the least busy replica; on a connection error, timeout or 5xx retry once
        elsewhere. A backend of one URL is retried at that URL: it may be a Service that spreads
        connections over several pods (Kubernetes), and a failed connection is not reused."""
        tried: set[Replica] = set()
        failure: ApiError = BackendUnreachable(f"{self.name}: no replica configured")
        for attempt in range(2 if self.replicas else 0):
            replica = self.pick(tried) if len(self.replicas) > 1 else self.replicas[0]
            if replica is None:
                break
            if attempt:
                metrics.RETRIES.labels(self.name).inc()
            tried.add(replica)
            replica.in_flight += 1
            in_flight = metrics.REPLICA_IN_FLIGHT.labels(self.name, replica.url)
            in_flight.inc()
            try:
                session = self.fresh_session if attempt and len(self.replicas) == 1 else self.session
                async with session.post(
                    replica.url + path, data=content, headers={**self.headers, "content-type": content_type}
                ) as response:
                    reply = BackendReply(
                        response.status, await response.read(), response.headers.get("content-type", "application/json")
                    )
            except asyncio.TimeoutError:
                failure = BackendTimedOut(f"{self.name} at {replica.url} timed out.")
                replica.failed(failure.message)
                continue
            except aiohttp.ClientError as exc:
                failure = BackendUnreachable(f"{self.name} at {replica.url} cannot be reached: {exc!r}.")
                replica.healthy = False
                replica.failed(failure.message)
                continue
            finally:
                replica.in_flight -= 1
                in_flight.dec()
            if reply.status >= 500:
                # A 503 says why the backend cannot serve now: passed on as a 503.
                failure = (
                    Unavailable(f"{self.name} at {replica.url} is unavailable: {_message(reply)}")
                    if reply.status == 503
                    else BackendFailed(f"{self.name} at {replica.url} failed with {reply.status}: {_message(reply)}")
                )
                replica.failed(failure.message)
                continue
            replica.answered()
            return reply
        log.warning("backend request failed", extra={"backend": self.name, "error": failure.message})
        raise failure

    async def get_json(self, replica: Replica, path: str, timeout: float) -> Any:
        wait = aiohttp.ClientTimeout(total=timeout)
        async with self.session.get(replica.url + path, headers=dict(self.headers), timeout=wait) as response:
            response.raise_for_status()
            return await response.json(loads=orjson.loads, content_type=None)

    async def check(self, replica: Replica) -> bool:
        """Ping one replica; True when it just came up."""
        try:
            async with self.session.get(replica.url + "/ping", timeout=PING_TIMEOUT) as response:
                healthy = response.status == 200
            error = None if healthy else f"/ping answered {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            healthy, error = False, f"/ping failed: {exc!r}"
        came_up = healthy and not replica.healthy
        if healthy != replica.healthy:
            log.info("replica %s", "up" if healthy else "down", extra={"backend": self.name, "url": replica.url})
        replica.healthy = healthy
        metrics.REPLICA_UP.labels(self.name, replica.url).set(int(healthy))
        if error:
            replica.failed(error)
        elif came_up:  # an error from before it came up is history
            replica.answered()
        return came_up

    async def check_all(self) -> bool:
        """Ping every replica; True when one came up."""
        return any(await asyncio.gather(*(self.check(replica) for replica in self.replicas)))

    async def close(self) -> None:
        await self.session.close()
        await self.fresh_session.close()

    def state(self) -> dict[str, Any]:
        return {"healthy": any(r.healthy for r in self.replicas), "replicas": [r.state() for r in self.replicas]}


def _message(reply: BackendReply) -> str:
    """The backend's own error message: its JSON `detail`, else the start of its body."""
    try:
        detail = orjson.loads(reply.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    return str(detail) if detail else reply.content[:500].decode("utf-8", "replace")
