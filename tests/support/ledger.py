"""The demo configuration with a usage ledger and an admin key, for tests of the ledger and the admin API."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tests.support.configs import demo_dict

__all__ = ["ADMIN", "ADMIN_KEY", "USERS", "ledger_config"]

ADMIN_KEY = "test-admin-key-0123456789-abcdefghijkl"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
USERS = {
    "freeuser1": "freeuser1_key",
    "premiumuser1": "premiumuser1_key",
    "enterpriseuser1": "enterpriseuser1_key",
}


def ledger_config(backend: str, database_url: str | None, spool: Path, **database: Any) -> dict[str, Any]:
    config = demo_dict(backend)
    config["database"] = {"url": database_url, "spool_dir": str(spool), "flush_interval": "0.2s", **database}
    config["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    config["models"][0]["pricing"] = {"prompt_per_1k": 0.5, "completion_per_1k": 1.5}
    return config
