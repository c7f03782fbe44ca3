"""`maas deploy assemble-config`: the gateway pod joins its configuration parts into one valid file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from maas_gateway.config import load_config
from maas_gateway.deploy.config_parts import ConfigPartsError, assemble, merge_parts
from tests.support.processes import maas

_BASE = """
server: {host: 0.0.0.0, port: 8000}
tiers:
  free:
    limits: [{limit: 5, unit: requests, window: 2m}]
"""
_MODEL = """
models:
  - {name: simulator-model, backends: ["http://maas-simulator:8000"]}
"""
_KEYS = "api_keys:\n  - {user: alice, tier: free, key: alice-demo-key}\n"


def _parts(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, "utf-8")
    return directory


def test_parts_merge_in_name_order_across_directories(tmp_path: Path) -> None:
    """Parts are read in file-name order whatever their directory: lists join, mappings merge, and a
    later scalar replaces an earlier one."""
    first = _parts(tmp_path / "config.d", {"00-base.yaml": _BASE, "30-more.yaml": "server: {port: 9000}\n"})
    second = _parts(tmp_path / "keys.d", {"20-model.yaml": _MODEL, "50-keys.yaml": _KEYS})
    extra = "models:\n  - {name: other-model, backends: ['http://other:80']}\n"
    _parts(first, {"40-other.yaml": extra})
    config, text = assemble([first, second], environ={})
    assert [model.name for model in config.models] == ["simulator-model", "other-model"]
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    assert [key.user for key in config.api_keys] == ["alice"]
    assert text.startswith(
        "# Assembled by `maas deploy assemble-config` from: 00-base.yaml, 20-model.yaml, 30-more.yaml, "
        "40-other.yaml, 50-keys.yaml\n"
    )


def test_kubernetes_volume_internals_are_skipped(tmp_path: Path) -> None:
    """A ConfigMap volume's ..data directory and timestamped folders are skipped; the symbolic links to
    the keys are read."""
    real = _parts(
        tmp_path / "volume" / "..2026_11_23_10_00_00.1", {"00-base.yaml": _BASE, "20-model.yaml": _MODEL}
    )
    volume = real.parent
    (volume / "..data").symlink_to(real.name)
    for name in ("00-base.yaml", "20-model.yaml"):
        (volume / name).symlink_to(Path("..data") / name)
    (volume / "README.txt").write_text("not a part", "utf-8")
    config, _text = assemble([volume], environ={})
    assert [model.name for model in config.models] == ["simulator-model"]


def test_environment_references_are_replaced(tmp_path: Path) -> None:
    """${NAME} in a part becomes the environment variable's value, so secrets stay out of ConfigMaps."""
    database = "database:\n  url: postgresql+asyncpg://maas:${DB_PASSWORD}@maas-postgres:5432/maas\n"
    directory = _parts(
        tmp_path / "parts", {"00-base.yaml": _BASE, "20-model.yaml": _MODEL, "60-db.yaml": database}
    )
    config, text = assemble([directory], environ={"DB_PASSWORD": "s3cret"})
    assert config.database.url == "postgresql+asyncpg://maas:s3cret@maas-postgres:5432/maas"
    assert "${" not in text


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"00-base.yaml": _BASE, "60-db.yaml": "database: {url: '${MISSING}'}\n"},
            r"uses \$\{MISSING\}, which the environment does not set\.",
        ),
        ({"00-base.yaml": "- a list\n"}, "The configuration part 00-base.yaml must be a YAML mapping"),
        (
            {"00-base.yaml": _BASE, "10-bad.yaml": "tiers: [free]\n"},
            "gives `tiers` a different kind of value",
        ),
        ({"00-base.yaml": "server: {port: [\n"}, "The configuration part .*00-base.yaml is not valid YAML"),
        ({"00-base.yaml": _BASE}, "models: Field required"),
        ({"notes.txt": "nothing"}, r"There are no configuration parts \(\*\.yaml\)"),
    ],
)
def test_bad_parts_are_refused_with_a_sentence(tmp_path: Path, files: dict[str, str], message: str) -> None:
    """An unset variable, a part that is not a mapping, a clash of kinds, broken YAML, an invalid result
    and an empty directory each name the part and the problem."""
    with pytest.raises(ConfigPartsError, match=message):
        assemble([_parts(tmp_path / "parts", files)], environ={})


def test_a_part_name_used_twice_is_refused(tmp_path: Path) -> None:
    """The same file name in two directories is a mistake, not an override."""
    first = _parts(tmp_path / "a", {"00-base.yaml": _BASE})
    second = _parts(tmp_path / "b", {"00-base.yaml": _BASE})
    with pytest.raises(ConfigPartsError, match=r"is in both .* give each part its own file name\."):
        assemble([first, second], environ={})


def test_merge_copies_rather_than_shares() -> None:
    """Merging never changes the parts it was given."""
    part = {"models": [{"name": "a"}]}
    merged = merge_parts([("00.yaml", part), ("10.yaml", {"models": [{"name": "b"}]})])
    assert merged == {"models": [{"name": "a"}, {"name": "b"}]}
    assert part == {"models": [{"name": "a"}]}


def test_assemble_config_command_writes_a_file_serve_accepts(tmp_path: Path) -> None:
    """The command writes the joined file (readable by its owner only) that `maas serve` loads, and
    reports what it assembled; a bad part exits 2 with the reason."""
    directory = _parts(
        tmp_path / "parts", {"00-base.yaml": _BASE, "20-model.yaml": _MODEL, "50-keys.yaml": _KEYS}
    )
    output = tmp_path / "config.yaml"
    command = maas("deploy", "assemble-config", "--output", str(output), str(directory))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Assembled the configuration: 1 models, 1 tiers, 1 API keys." in result.stderr
    assert load_config(output).models[0].name == "simulator-model"
    assert yaml.safe_load(output.read_text("utf-8"))["api_keys"][0]["user"] == "alice"
    assert os.stat(output).st_mode & 0o077 == 0
    (directory / "20-model.yaml").write_text("models: {}\n", "utf-8")
    failed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert failed.returncode == 2
    assert (
        "The configuration assembled from 00-base.yaml, 20-model.yaml, 50-keys.yaml is invalid:"
        in failed.stderr
    )
    assert "  - models: " in failed.stderr
