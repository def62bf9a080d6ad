"""Prometheus metrics plumbing both services share: a registry per service, the HTTP request
metrics (by route template, never by raw path, so label values stay a fixed set), and the
/metrics endpoint, on the service's own port or on METRICS_PORT.

Each service declares its own metrics in its `metrics` module against its own registry, so two
services in one process (as in the tests) never mix their figures.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import start_http_server
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aio_common import protocol

# Latency buckets from a fast /ping to a slow OCR of a large photo on a small CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
OTHER_ROUTE = "other"
METRICS_PATH = "/metrics"


@dataclass
class Registry:
    """A service's registry with the request metrics every service has."""

    prefix: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, CPU seconds, fds
        self.requests = Counter(
            f"{self.prefix}_http_requests",
            "HTTP requests answered, by route template, task and status code",
            ["route", "method", "task", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            f"{self.prefix}_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template and task",
            ["route", "method", "task"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


# A request's task label, the same values in both services: what it asked for, the image tasks
# joined by + in this order (ocr+clip-image), or clip-text for a text.
OCR_TASK = protocol.OCR
CLIP_IMAGE = "clip-image"
CLIP_TEXT = "clip-text"
_IMAGE_TASKS = {protocol.OCR: OCR_TASK, protocol.CLIP: CLIP_IMAGE, protocol.FACES: protocol.FACES}


def predict_task(tasks: Iterable[str], has_image: bool) -> str:
    """The task label of a /predict request for Immich's `tasks`."""
    if not has_image:
        return CLIP_TEXT
    asked = set(tasks)
    return "+".join(label for task, label in _IMAGE_TASKS.items() if task in asked) or OTHER_ROUTE


def set_task(scope: Scope, task: str) -> None:
    """Name the task a request asked for (a value from a fixed set), for the request metrics."""
    scope.setdefault("state", {})["metrics_task"] = task


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by route template and task.
    `extra_routes` are paths served outside FastAPI's routing (the gateway's /predict)."""

    def __init__(self, app: ASGIApp, metrics: Registry, extra_routes: Iterable[str] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.extra_routes = frozenset(extra_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: the client then saw a dropped connection

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = self._route(scope)
            task = scope.get("state", {}).get("metrics_task", "")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.requests.labels(route, method, task, str(status)).inc()
            self.metrics.request_seconds.labels(route, method, task).observe(time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        """The template of the route that answered (routing leaves it in the scope)."""
        if scope["path"] in self.extra_routes:
            return str(scope["path"])
        return str(getattr(scope.get("route"), "path", OTHER_ROUTE))


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def install(app: FastAPI, metrics: Registry, *, separate_port: bool, extra_routes: Iterable[str] = ()) -> None:
    """Count every request (outermost middleware: 413s and /predict included) and, unless the
    metrics have a port of their own, serve them at /metrics."""
    app.add_middleware(RequestMetrics, metrics=metrics, extra_routes=extra_routes)
    if separate_port:
        return

    @app.get(
        METRICS_PATH,
        response_class=Response,
        summary="Prometheus metrics (text exposition format)",
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
        tags=["operations"],
    )
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@contextlib.contextmanager
def separate_server(metrics: Registry, host: str, port: int) -> Iterator[None]:
    """/metrics on a port of its own (METRICS_PORT), for the lifetime of the service."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    try:
        yield
    finally:
        server.shutdown()
        thread.join(timeout=5)


def bounded(value: str, known: Iterable[str], other: str = OTHER_ROUTE) -> str:
    """`value` when it is one of `known`, else `other`: label values must come from a fixed set."""
    return value if value in known else other
