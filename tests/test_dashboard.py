"""The Grafana dashboard and the monitoring profile's configuration: every query parses as PromQL
and names only metrics the services export, under the data source and job names provisioned.
(Grafana and Prometheus themselves cannot run here: no container engine.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import yaml

from gateway.metrics import METRICS as GATEWAY
from mt_photos_ai.metrics import METRICS as AI

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = json.loads((DEPLOY / "grafana" / "dashboards" / "immich-aio.json").read_text())
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> set[str]:
    """Every series name the two services' registries can export (with or without samples yet)."""
    names = set()
    for registry in (GATEWAY.registry, AI.registry):
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in DASHBOARD["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_every_query_parses_and_names_exported_metrics():
    known = exported() | {"process_resident_memory_bytes"}
    used = set()
    for title, expr in queries():
        promql_parser.parse(expr)  # raises on a syntax error
        names = set(re.findall(r"\b((?:aio|process)_[a-z0-9_]+)\b", expr))
        assert names, title
        assert names <= known, (title, names - known)
        used |= names
    # Every metric family is on the dashboard.
    families = {name for name in exported() if name.startswith("aio_")}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    assert {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in families} <= shown


def test_panels_use_the_provisioned_data_source_and_scrape_jobs():
    datasources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    panels = [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]
    assert panels and all(panel["datasource"]["uid"] == uid for panel in panels)
    assert all(target["datasource"]["uid"] == uid for panel in panels for target in panel["targets"])
    jobs = {job["job_name"] for job in yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]}
    named = {job for _, expr in queries() for job in re.findall(r'job="([^"]+)"', expr)}
    assert named <= jobs == {"inference-gateway", "mt-photos-ai"}
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and DASHBOARD["uid"] == "immich-aio"


class ComposeLoader(yaml.SafeLoader):
    """Compose's own tags (`!reset`) read as plain values."""


ComposeLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_the_monitoring_profile_mounts_the_dashboard_where_grafana_looks():
    compose = yaml.load((DEPLOY.parent / "docker-compose.aio.yml").read_text(), Loader=ComposeLoader)
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "immich-aio.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert grafana["profiles"] == compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert mounts[provider["providers"][0]["options"]["path"]].endswith("deploy/grafana/dashboards")
    assert mounts["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
