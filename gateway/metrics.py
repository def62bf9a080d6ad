"""The gateway's Prometheus metrics (`aio_gateway_*`), declared once for the process.

Labels come from fixed sets: tasks Immich names (anything else is `other`), the configured
backends and replica URLs, the search kinds. No asset, user or query ever becomes a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from aio_common import protocol
from aio_common.metrics import LATENCY_BUCKETS, Registry, bounded

METRICS = Registry("aio_gateway")
_registry = METRICS.registry

KNOWN_TASKS = (protocol.CLIP, protocol.OCR, protocol.FACES)
SEARCH_KINDS = ("ocr", "clip", "mixed", "metadata-ocr", "smart-ocr", "forwarded")

PREDICT = Counter(
    "aio_gateway_predict_requests",
    "Parts of /predict requests sent to a backend, by task, backend and answer status",
    ["task", "backend", "status"],
    registry=_registry,
)
PREDICT_SECONDS = Histogram(
    "aio_gateway_predict_duration_seconds",
    "Time a backend took to answer its part of a /predict request",
    ["task", "backend"],
    buckets=LATENCY_BUCKETS,
    registry=_registry,
)
REPLICA_UP = Gauge(
    "aio_gateway_replica_up",
    "1 while the replica answers /ping (checked every HEALTH_INTERVAL)",
    ["backend", "replica"],
    registry=_registry,
)
REPLICA_IN_FLIGHT = Gauge(
    "aio_gateway_replica_in_flight",
    "Requests sent to the replica and not yet answered",
    ["backend", "replica"],
    registry=_registry,
)
RETRIES = Counter(
    "aio_gateway_backend_retries",
    "Requests retried on another replica after a failure",
    ["backend"],
    registry=_registry,
)
FALLBACKS = Counter(
    "aio_gateway_fallbacks",
    "OCR requests sent to the stock server because the AI service failed (OCR_FALLBACK)",
    ["task"],
    registry=_registry,
)
SEARCHES = Counter(
    "aio_gateway_searches",
    "Searches, by kind (smart search's ocr:, clip:, mixed; Immich's ocr field: metadata-ocr, its OCR "
    "search type, and smart-ocr, smart search with ocr; forwarded, either route) and status",
    ["kind", "status"],
    registry=_registry,
)
SEARCH_SECONDS = Histogram(
    "aio_gateway_search_duration_seconds",
    "Time to answer a smart search, by kind",
    ["kind"],
    buckets=LATENCY_BUCKETS,
    registry=_registry,
)
INDEX_ROWS = Gauge(
    "aio_gateway_index_rows", "Assets in the OCR word index (PostgreSQL's live row count)", registry=_registry
)
INDEX_LAG = Gauge(
    "aio_gateway_index_lag_seconds",
    "How long the oldest OCR change Immich has and the index has not read has waited (0: caught up)",
    registry=_registry,
)
INDEX_SYNCED = Gauge(
    "aio_gateway_index_last_sync_timestamp_seconds", "When the last index sync step succeeded", registry=_registry
)
SYNC_SECONDS = Histogram(
    "aio_gateway_index_sync_duration_seconds",
    "Time of one index sync step (a pass over Immich's change feeds)",
    buckets=LATENCY_BUCKETS,
    registry=_registry,
)
SYNC_ERRORS = Counter("aio_gateway_index_sync_errors", "Index sync steps that failed", registry=_registry)
REPROCESS_PENDING = Gauge(
    "aio_gateway_reprocess_pending",
    "Assets reset for re-processing whose Immich queue is not started yet",
    registry=_registry,
)
REPROCESS_STARTED = Counter(
    "aio_gateway_reprocess_started", "Immich queues started for re-processing", ["queue"], registry=_registry
)

for _kind in SEARCH_KINDS:  # present from the start, so a dashboard shows them at 0
    SEARCH_SECONDS.labels(_kind)


def task_label(task: str) -> str:
    return bounded(task, KNOWN_TASKS)
