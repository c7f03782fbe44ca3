"""The configuration: durations, schema checks, the loader, and the `maas config` and `maas keys` commands."""

from __future__ import annotations

import copy
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from maas_gateway.config import (
    ConfigError,
    demo_config,
    demo_config_text,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)
from tests.support.processes import maas

Mutation = Callable[[dict[str, Any]], None]


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    return data


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(maas(*args), input=stdin, capture_output=True, text=True, timeout=30, check=False)


def test_demo_config_parses() -> None:
    """The built-in demo has its two models, three tiers with limits and five keys, kept as secrets."""
    config = demo_config()
    assert [model.name for model in config.models] == ["simulator-model", "simulator-embed"]
    assert set(config.tiers) == {"free", "premium", "enterprise"}
    requests = config.tiers["free"].limits[0]
    assert (requests.limit, requests.unit, requests.window) == (5, "requests", 120.0)
    assert [key.user for key in config.api_keys][:2] == ["freeuser1", "freeuser2"]
    first = config.api_keys[0].key
    assert first is not None
    assert first.get_secret_value() == "freeuser1_key"
    assert "freeuser1_key" not in repr(config)
    assert config.server.upstream_read_timeout == 300.0
    assert config.limits.enabled is True


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        (" 2 m ", 120.0),
        (45, 45.0),
        (0.25, 0.25),
    ],
)
def test_durations_parse_to_seconds(text: object, seconds: float) -> None:
    """Durations with a unit (ms, s, m, h, d, w) or plain numbers of seconds parse to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2x", "'2x' is not a duration"),
        ("", "is not a duration"),
        ("m", "'m' is not a duration"),
        ("-1s", "'-1s' is not a duration"),
        ("2M", "'2M' is not a duration"),
        (0, "longer than zero"),
        (-5, "longer than zero"),
        ("0s", "longer than zero"),
        (True, "number of seconds"),
        (None, "number of seconds"),
        ([60], "number of seconds"),
    ],
)
def test_bad_durations_raise_a_clear_message(value: object, expected: str) -> None:
    """A value that is not a positive duration raises ValueError with a whole-sentence message."""
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(value)
    message = str(caught.value)
    assert expected in message
    assert message.endswith(".")


@pytest.mark.parametrize(
    ("seconds", "text"), [(120, "2m"), (3600, "1h"), (86400, "1d"), (90, "90s"), (0.5, "0.5s")]
)
def test_format_duration_uses_the_largest_whole_unit(seconds: float, text: str) -> None:
    """Durations render in the largest whole unit and parse back to the same number of seconds."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def _set(path: str, value: object) -> Mutation:
    """A mutation setting the dotted ``path`` (list indexes as numbers) to ``value``."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _duplicate_model(data: dict[str, Any]) -> None:
    data["models"].append({"name": "simulator-model", "backends": ["http://127.0.0.1:9"]})


def _both_secrets(data: dict[str, Any]) -> None:
    data["api_keys"][1]["key_sha256"] = "a" * 64


def _no_secret(data: dict[str, Any]) -> None:
    del data["api_keys"][2]["key"]


def _same_hash_twice(data: dict[str, Any]) -> None:
    data["api_keys"] += [{"user": name, "tier": "free", "key_sha256": "b" * 64} for name in ("x", "y")]


BAD_FILES: dict[str, tuple[Mutation, list[str]]] = {
    "unknown top-level field": (_set("modles", []), ["modles", "Extra inputs are not permitted"]),
    "unknown nested field": (_set("tiers.free.limits.0.windw", "1m"), ["tiers.free.limits.0.windw"]),
    "key with unknown tier": (_set("api_keys.0.tier", "gold"), ["api_keys.0.tier", "unknown tier 'gold'"]),
    "duplicate model names": (_duplicate_model, ["models", "name 'simulator-model' is used twice"]),
    "both key and key_sha256": (_both_secrets, ["api_keys.1", "exactly one of `key`"]),
    "neither key nor key_sha256": (_no_secret, ["api_keys.2", "exactly one of `key`"]),
    "duplicate key_sha256": (_same_hash_twice, ["api_keys", "configured twice"]),
    "limit for unknown model": (
        _set("tiers.premium.limits.1.model", "gpt-9"),
        ["tiers.premium.limits.1.model", "unknown model 'gpt-9'"],
    ),
    "port is not a number": (_set("server.port", "eighty"), ["server.port", "valid integer"]),
    "limit is not a number": (_set("tiers.free.limits.0.limit", "many"), ["tiers.free.limits.0.limit"]),
    "backend is not a URL": (_set("models.0.backends", ["not a url"]), ["models.0.backends.0"]),
    "bad window": (_set("tiers.free.limits.0.window", "2 fortnights"), ["tiers.free.limits.0.window"]),
    "unknown limit unit": (_set("tiers.free.limits.0.unit", "bytes"), ["tiers.free.limits.0.unit"]),
    "model for unknown tier": (_set("models.0.tiers", ["gold"]), ["models.0.tiers", "unknown tier 'gold'"]),
    "key for unknown model": (_set("api_keys.0.models", ["gpt-9"]), ["api_keys.0.models", "'gpt-9'"]),
    "user override to unknown tier": (_set("users", {"bob": {"tier": "gold"}}), ["users.bob.tier"]),
    "host with a port": (_set("models.0.hosts", ["a.example:80"]), ["models.0.hosts", "a.example:80"]),
    "short plaintext key": (_set("api_keys.0.key", "short"), ["api_keys.0", "at least 8 characters"]),
    "duplicate path prefix": (_set("models.1.path_prefix", "simulator"), ["path_prefix 'simulator'"]),
    "no models": (_set("models", []), ["models", "at least 1 item"]),
    "redis URL option the limiter ignores": (
        _set("limits.storage", "redis://127.0.0.1:6379/0?socket_keepalive=true"),
        ["limits.storage", "does not support: socket_keepalive"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_configuration_names_the_field(case: str) -> None:
    """A mistake in the file raises ConfigError whose message names the source and the field path."""
    mutate, expected = BAD_FILES[case]
    data = _demo()
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="bad.yaml")
    message = str(caught.value)
    assert message.startswith("bad.yaml is invalid:")
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize("data", [None, [], "models: x", 42])
def test_configuration_must_be_a_mapping(data: object) -> None:
    """A document that is not a mapping raises ConfigError saying what the file must be."""
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        parse_config(data)


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    """load_config reads and validates a YAML file."""
    path = tmp_path / "gateway.yaml"
    path.write_text(demo_config_text(), "utf-8")
    assert load_config(path) == demo_config()


def test_load_config_on_a_missing_file(tmp_path: Path) -> None:
    """A missing file raises ConfigError naming the file."""
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="Cannot read the configuration file") as caught:
        load_config(missing)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"models: [unclosed\n", "is not valid YAML"), (b"\xff\xfe\x00bad", "is not UTF-8 text")],
)
def test_load_config_on_unreadable_content(tmp_path: Path, content: bytes, expected: str) -> None:
    """Invalid YAML or non-UTF-8 bytes raise ConfigError naming the file and the problem."""
    path = tmp_path / "broken.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_same_plaintext_key_twice_is_a_config_error() -> None:
    """Two api_keys entries with the same plaintext key are rejected when the file is loaded."""
    data = _demo()
    data["api_keys"].append({"user": "copycat", "tier": "free", "key": "freeuser1_key"})
    with pytest.raises(ConfigError, match="api_keys"):
        parse_config(data)


def test_cli_validate_reports_the_field_of_a_bad_file(tmp_path: Path) -> None:
    """`maas config validate` exits 2 on a bad file and names the field in stderr."""
    data = _demo()
    _set("api_keys.3.tier", "platinum")(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    result = _run("config", "validate", str(path))
    assert result.returncode == 2
    assert "api_keys.3.tier" in result.stderr
    assert "platinum" in result.stderr
    assert result.stdout == ""


def test_cli_validate_accepts_the_demo(tmp_path: Path) -> None:
    """`maas config validate` exits 0 on the demo file and summarises it."""
    path = tmp_path / "demo.yaml"
    path.write_text(demo_config_text(), "utf-8")
    result = _run("config", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "is valid: 2 models, 3 tiers, 5 API keys." in result.stdout


def test_cli_validate_on_a_missing_file(tmp_path: Path) -> None:
    """`maas config validate` on a missing file exits 2 with a message instead of a traceback."""
    result = _run("config", "validate", str(tmp_path / "nowhere.yaml"))
    assert result.returncode == 2
    assert "Cannot read the configuration file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_example_is_a_valid_commented_configuration() -> None:
    """`maas config example` prints commented YAML that parses and validates."""
    result = _run("config", "example")
    assert result.returncode == 0
    assert result.stdout.startswith("#")
    config = parse_config(yaml.safe_load(result.stdout))
    assert config == demo_config()


@pytest.mark.parametrize("from_stdin", [False, True])
def test_cli_keys_hash_prints_the_sha256(from_stdin: bool) -> None:
    """`maas keys hash KEY` (or the key on stdin) prints its SHA-256 digest and public key id."""
    key = "sk-test-0123456789"
    digest = hashlib.sha256(key.encode()).hexdigest()
    result = _run("keys", "hash", stdin=key + "\n") if from_stdin else _run("keys", "hash", key)
    assert result.returncode == 0
    assert f"key_sha256: {digest}" in result.stdout
    assert f"key_{digest[:12]}" in result.stdout
    assert key not in result.stdout


def test_cli_keys_hash_without_a_key_fails() -> None:
    """`maas keys hash` with nothing on stdin exits 2 saying no key was given."""
    result = _run("keys", "hash", stdin="")
    assert result.returncode == 2
    assert "No key was given." in result.stderr
