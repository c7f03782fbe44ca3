"""Metrics: Prometheus counters and histograms per user, tier and model."""

from maas_gateway.metrics.gateway_metrics import CONTENT_TYPE, GatewayMetrics

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]
