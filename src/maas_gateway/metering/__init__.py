"""Metering: the usage ledger for chargeback, written off the hot path and never losing a record."""

from maas_gateway.metering.memory_reports import InMemoryUsageReports
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.reports import ReportRange, UsageGroup, UsageReports, UsageTotals
from maas_gateway.metering.spool import Spool
from maas_gateway.metering.store import GROUPS, InMemoryLedgerStore, LedgerStore, UsageQuery, UsageRow
from maas_gateway.metering.usage_csv import defuse_formula, usage_csv, usage_csv_lines
from maas_gateway.metering.writer import LedgerWriter

__all__ = [
    "GROUPS",
    "InMemoryLedgerStore",
    "InMemoryUsageReports",
    "LedgerStore",
    "LedgerWriter",
    "ReportRange",
    "Spool",
    "UsageGroup",
    "UsageQuery",
    "UsageRecord",
    "UsageReports",
    "UsageRow",
    "UsageTotals",
    "defuse_formula",
    "usage_csv",
    "usage_csv_lines",
]
