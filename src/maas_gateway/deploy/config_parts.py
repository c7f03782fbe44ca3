"""Assembling the gateway's configuration file from parts, as a Kubernetes pod does at start.

A deployment mounts its configuration as several YAML parts (one ConfigMap key per part: the server and
limit settings, the tiers, one part per model, and the API keys from a Secret), so that Kustomize
components can add a model without rewriting a shared file. The parts are read in file-name order and
merged: mappings are merged key by key, lists are joined (every part's ``models`` and ``api_keys``), and
any other value is replaced by the later part. ``${NAME}`` in a part is replaced by the environment
variable NAME first, so a secret (the database password) reaches the file without being in a ConfigMap.
The result is validated like any configuration file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from maas_gateway.config import ConfigError, GatewayConfig, parse_config

__all__ = ["ConfigPartsError", "assemble", "expand", "merge_parts", "part_files", "read_parts"]

_SUFFIXES = (".yaml", ".yml")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigPartsError(Exception):
    """The parts cannot be assembled into a valid configuration; the message says which and why."""


def part_files(directories: Sequence[Path]) -> list[Path]:
    """The YAML parts in ``directories``, in file-name order.

    Hidden entries are skipped: Kubernetes volumes hold the real files under ``..data`` and show each key
    as a symbolic link beside it. A file name used in two directories is a mistake, not an override.
    """
    found: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            raise ConfigPartsError(f"{directory} is not a directory of configuration parts.")
        for entry in directory.iterdir():
            if entry.name.startswith(".") or not entry.name.endswith(_SUFFIXES) or not entry.is_file():
                continue
            if entry.name in found:
                raise ConfigPartsError(
                    f"The configuration part {entry.name} is in both {found[entry.name].parent} and "
                    f"{directory}; give each part its own file name."
                )
            found[entry.name] = entry
    if not found:
        listed = ", ".join(str(directory) for directory in directories) or "no directory"
        raise ConfigPartsError(f"There are no configuration parts (*.yaml) in {listed}.")
    return [found[name] for name in sorted(found)]


def expand(text: str, name: str, environ: Mapping[str, str]) -> str:
    """Replace each ``${NAME}`` in ``text`` with the variable's value; an unset variable is an error."""

    def value(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable not in environ:
            raise ConfigPartsError(
                f"The configuration part {name} uses ${{{variable}}}, which the environment does not set."
            )
        return environ[variable]

    return _REFERENCE.sub(value, text)


def read_parts(files: Sequence[Path], environ: Mapping[str, str] | None = None) -> list[tuple[str, Any]]:
    """Each file's name and parsed YAML, after ``${NAME}`` references are replaced."""
    variables = os.environ if environ is None else environ
    parts = []
    for path in files:
        try:
            text = expand(path.read_text("utf-8"), path.name, variables)
            parts.append((path.name, yaml.safe_load(text)))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigPartsError(f"Cannot read the configuration part {path}: {exc}.") from None
        except yaml.YAMLError as exc:
            raise ConfigPartsError(f"The configuration part {path} is not valid YAML: {exc}") from None
    return parts


def merge_parts(parts: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Merge parsed parts in the order given (mappings merged, lists joined, other values replaced)."""
    merged: dict[str, Any] = {}
    for name, data in parts:
        if data is None:
            continue
        if not isinstance(data, Mapping):
            raise ConfigPartsError(f"The configuration part {name} must be a YAML mapping such as `models:`.")
        _merge_into(merged, data, name, "")
    return merged


def _merge_into(target: dict[str, Any], source: Mapping[str, Any], name: str, where: str) -> None:
    for key, value in source.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in target or target[key] is None:
            target[key] = _copy(value)
            continue
        current = target[key]
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge_into(current, value, name, path)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(_copy(value))
        elif isinstance(current, dict | list) or isinstance(value, Mapping | list):
            raise ConfigPartsError(
                f"The configuration part {name} gives `{path}` a different kind of value than an earlier "
                "part; a mapping can only be merged with a mapping and a list joined with a list."
            )
        else:
            target[key] = value


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def assemble(
    directories: Sequence[Path], environ: Mapping[str, str] | None = None
) -> tuple[GatewayConfig, str]:
    """The validated configuration from the parts in ``directories``, and the file text to write."""
    files = part_files(directories)
    merged = merge_parts(read_parts(files, environ))
    names = ", ".join(path.name for path in files)
    try:
        config = parse_config(merged, source=f"The configuration assembled from {names}")
    except ConfigError as exc:
        raise ConfigPartsError(str(exc)) from None
    header = f"# Assembled by `maas deploy assemble-config` from: {names}\n"
    return config, header + yaml.safe_dump(merged, sort_keys=False)
