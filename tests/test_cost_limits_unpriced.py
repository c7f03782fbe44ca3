"""A model without prices under a money budget costs nothing against it: `maas config validate` (and the
gateway, in its log at start and reload) says so, naming the models, instead of letting it pass unseen."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.configs import demo_dict
from tests.support.processes import maas


def _validate(config: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    command = maas("config", "validate", str(path))
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_an_unpriced_model_under_a_money_limit_is_named_in_a_warning(tmp_path: Path) -> None:
    """The demo (no money limits) validates without a warning; a $5 monthly budget on the free tier
    makes both unpriced demo models free against it: the file is valid (exit 0) and a warning names
    them; priced, or with the budget on the priced model only, the warning is gone."""
    config = demo_dict("http://127.0.0.1:9")
    plain = _validate(config, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "Warning" not in plain.stderr

    config["tiers"]["free"]["limits"].append({"limit": 5, "unit": "cost", "window": "month"})
    warned = _validate(config, tmp_path)
    assert warned.returncode == 0, warned.stderr
    assert "Warning: The models 'simulator-model', 'simulator-embed' have no prices" in warned.stderr

    config["models"][0]["prices"] = [{"effective_from": "2026-01-01", "input_per_million": 1.0}]
    config["tiers"]["free"]["limits"][-1]["model"] = "simulator-model"
    priced = _validate(config, tmp_path)
    assert priced.returncode == 0, priced.stderr
    assert "Warning" not in priced.stderr
