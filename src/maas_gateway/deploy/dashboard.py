"""The Grafana dashboard for the gateway, built from the metric names in ``METRICS``.

``METRICS`` is the one place where the deployment names the gateway's Prometheus metrics. The dashboard
file in the manifests (``components/metrics/dashboard.json``) is generated from it by
``maas deploy dashboard --output FILE``; a test fails when the file and this module disagree, so a
renamed metric is changed here and the file regenerated.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["METRICS", "build_dashboard", "dashboard_json"]

# The gateway's metrics (maas_gateway.metrics). Counters carry the labels user, tier and model (tokens
# also kind: prompt or completion); the duration histogram carries model and endpoint. The call counters
# keep the origin system's (Limitador's) names.
METRICS: dict[str, str] = {
    "authorized": "authorized_calls_total",
    "limited": "limited_calls_total",
    "tokens": "maas_tokens_total",
    "duration": "maas_request_duration_seconds",
}

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_FILTER = 'tier=~"$tier", model=~"$model"'


_PanelSpec = tuple[str, str, tuple[int, int, int, int], str, list[tuple[str, str]]]


def _panel(panel_id: int, spec: _PanelSpec) -> dict[str, Any]:
    """A panel from (title, type, (x, y, width, height), unit, [(PromQL, legend), ...])."""
    title, kind, (x, y, w, h), unit, queries = spec
    targets = [
        {"datasource": _DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + index)}
        for index, (expr, legend) in enumerate(queries)
    ]
    return {
        "id": panel_id,
        "title": title,
        "type": kind,
        "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": targets,
    }


def _variable(name: str, label: str) -> dict[str, Any]:
    query = f"label_values({METRICS['authorized']}, {name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
    }


def build_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    authorized, limited = METRICS["authorized"], METRICS["limited"]
    tokens, duration = METRICS["tokens"], METRICS["duration"]
    rate = "[$__rate_interval]"

    def total(metric: str) -> str:
        return f"sum(rate({metric}{{{_FILTER}}}{rate}))"

    def by(labels: str, metric: str) -> str:
        return f"sum by ({labels}) (rate({metric}{{{_FILTER}}}{rate}))"

    def quantile(q: str) -> str:
        return (
            f'histogram_quantile({q}, sum by (le, model) (rate({duration}_bucket{{model=~"$model"}}{rate})))'
        )

    specs: list[_PanelSpec] = [
        ("Authorized requests/s", "stat", (0, 0, 6, 4), "reqps", [(total(authorized), "requests/s")]),
        ("Rate-limited (429) requests/s", "stat", (6, 0, 6, 4), "reqps", [(total(limited), "429/s")]),
        ("Tokens per minute", "stat", (12, 0, 6, 4), "short", [(f"{total(tokens)} * 60", "tokens/min")]),
        (
            "Share of requests limited",
            "stat",
            (18, 0, 6, 4),
            "percentunit",
            [(f"{total(limited)} / ({total(authorized)} + {total(limited)})", "limited")],
        ),
        (
            "Authorized requests by tier",
            "timeseries",
            (0, 4, 12, 8),
            "reqps",
            [(by("tier", authorized), "{{tier}}")],
        ),
        (
            "Rate-limited (429) requests by tier",
            "timeseries",
            (12, 4, 12, 8),
            "reqps",
            [(by("tier", limited), "{{tier}}")],
        ),
        (
            "Tokens per minute by model and kind",
            "timeseries",
            (0, 12, 12, 8),
            "short",
            [(f"{by('model, kind', tokens)} * 60", "{{model}} {{kind}}")],
        ),
        (
            "Request duration by model (p50, p95)",
            "timeseries",
            (12, 12, 12, 8),
            "s",
            [(quantile("0.5"), "{{model}} p50"), (quantile("0.95"), "{{model}} p95")],
        ),
        (
            "Top users by tokens (last hour)",
            "bargauge",
            (0, 20, 24, 8),
            "short",
            [(f"topk(10, sum by (user, tier) (increase({tokens}{{{_FILTER}}}[1h])))", "{{user}} ({{tier}})")],
        ),
    ]
    panels = [_panel(index, spec) for index, spec in enumerate(specs, start=1)]
    datasource = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "refresh": 1,
    }
    return {
        "uid": "maas-gateway",
        "title": "maas-gateway",
        "description": "Requests, rate limits, tokens and latency of maas-gateway by tier, model and user.",
        "tags": ["maas-gateway", "llm"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [datasource, _variable("tier", "Tier"), _variable("model", "Model")]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def dashboard_json() -> str:
    """The dashboard file's exact text."""
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"
