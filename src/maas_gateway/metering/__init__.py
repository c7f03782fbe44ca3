"""Metering: the usage ledger for chargeback, written off the hot path and never losing a record."""

from maas_gateway.metering.prices import ModelPrice
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.spool import Spool
from maas_gateway.metering.store import GROUPS, InMemoryLedgerStore, LedgerStore, UsageQuery, UsageRow
from maas_gateway.metering.writer import LedgerWriter

__all__ = [
    "GROUPS",
    "InMemoryLedgerStore",
    "LedgerStore",
    "LedgerWriter",
    "ModelPrice",
    "Spool",
    "UsageQuery",
    "UsageRecord",
    "UsageRow",
]
