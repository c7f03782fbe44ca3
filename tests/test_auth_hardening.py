"""Credential guessing against real gateway processes: throttled per address, never logged."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import chat
from tests.support.polling import log_through, wait_until
from tests.support.processes import GatewayProcess, ServerProcess, free_port, maas

ADMIN_KEY = "hardening-admin-key-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
BURST = 3
# One attempt back every 2 s: a refusal outlasts the few requests a test makes during it, also on a loaded
# machine (2/3 s did not), and is short enough to wait out once. The refill rules: test_auth_throttle.py.
PER = "6s"


def _config(simulator: ServerProcess, **throttle: Any) -> dict[str, Any]:
    config = demo_dict(simulator.url, limits=False)
    config["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    config["security"] = {"auth_failures": {"burst": BURST, "per": PER, **throttle}}
    return config


def _wrong(number: int) -> str:
    return f"wrong-guess-{number:04d}-{'x' * 24}"


def _metric(gateway: GatewayProcess, name: str) -> float:
    for line in httpx.get(gateway.metrics_url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def _wait_out(response: httpx.Response) -> None:
    time.sleep(float(response.headers["retry-after"]))


def test_wrong_api_keys_throttle_the_address_even_for_a_correct_key(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """After `burst` wrong API keys on /v1/chat/completions the address gets 429 with Retry-After, in
    OpenAI's shape, even with a correct key; once the allowance refills the correct key works again.
    The wrong keys never appear in the gateway's output, and the metrics count failures and refusals."""
    gateway = gateway_factory(_config(simulator))
    for number in range(BURST):
        assert chat(gateway.url, _wrong(number), max_tokens=1).status_code == 401
    refused = chat(gateway.url, _wrong(BURST), max_tokens=1)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "too_many_failed_authentications")
    correct = chat(gateway.url, "premiumuser1_key", max_tokens=1)
    assert correct.status_code == 429
    models = httpx.get(gateway.url + "/v1/models", headers={"Authorization": "Bearer premiumuser1_key"})
    assert models.status_code == 429
    _wait_out(refused)
    served = chat(gateway.url, "premiumuser1_key", max_tokens=1)
    assert served.status_code == 200
    assert _metric(gateway, "maas_auth_failures_total") == BURST
    assert _metric(gateway, "maas_auth_throttled_total") == 3
    log = log_through(gateway, served)
    assert log.count("Too many failed authentications from 127.0.0.1") == 1
    for number in range(BURST + 1):
        assert _wrong(number) not in log


def test_wrong_admin_keys_throttle_the_address_even_for_the_right_admin_key(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """After `burst` wrong admin keys the admin API answers 429 with Retry-After, even to the right admin
    key, and so does self-service; each failure is a WARNING naming the address, never the key. (That the
    refill lets the address in again is the test above; here refusals last 20 s, so none ends early.)"""
    gateway = gateway_factory(_config(simulator, per="60s"))
    url = gateway.url + "/admin/users"
    for number in range(BURST):
        wrong = httpx.get(url, headers={"Authorization": f"Bearer {_wrong(number)}"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_admin_key"
    refused = httpx.get(url, headers={"Authorization": f"Bearer {_wrong(BURST)}"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_failed_authentications"
    right = httpx.get(url, headers=ADMIN)
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) >= 1
    own = httpx.get(gateway.url + "/v1/keys", headers={"Authorization": "Bearer premiumuser1_key"})
    assert own.status_code == 429  # self-service shares the allowance of the address
    log = log_through(gateway, own)
    assert log.count("A failed admin authentication from 127.0.0.1 (invalid_admin_key).") == BURST
    assert log.count("Too many failed authentications from 127.0.0.1") == 1
    for secret in [ADMIN_KEY, *(_wrong(number) for number in range(BURST + 1))]:
        assert secret not in log


def test_admin_and_self_service_calls_are_in_the_access_log_without_credentials(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """Every admin and self-service call is one JSON access-log line: method, path (no query), status,
    client address and who (the admin key, or user and key id), but never a key or the query string."""
    gateway = gateway_factory(_config(simulator))
    me = {"Authorization": "Bearer premiumuser1_key"}
    created = httpx.post(gateway.url + "/v1/keys", json={"name": "ci"}, headers=me)
    assert created.status_code == 201
    secret = created.json()["key"]
    assert httpx.get(gateway.url + "/admin/keys?search=hidden-query", headers=ADMIN).status_code == 200
    assert httpx.get(gateway.url + "/v1/usage", headers=me).status_code == 200
    wrong = httpx.get(gateway.url + "/admin/keys", headers={"Authorization": f"Bearer {_wrong(0)}"})
    assert wrong.status_code == 401
    pasted = httpx.delete(gateway.url + f"/v1/keys/{secret}", headers=me)  # a key in the URL by mistake
    assert pasted.status_code == 404
    assert "x-request-id" in created.headers
    log = log_through(gateway, pasted)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"event":"admin_call"')]
    seen = [(line["method"], line["path"], line["status"]) for line in lines]
    assert seen == [
        ("POST", "/v1/keys", 201),
        ("GET", "/admin/keys", 200),
        ("GET", "/v1/usage", 200),
        ("GET", "/admin/keys", 401),
        ("DELETE", "/v1/keys/[redacted]", 404),
    ]
    self_service, admin, _, failed, _ = lines
    assert self_service["request_id"] == created.headers["x-request-id"]
    assert (self_service["auth"], self_service["user"], self_service["admin"]) == (
        "config_key",
        "premiumuser1",
        False,
    )
    assert self_service["key_id"].startswith("key_")
    assert (admin["auth"], admin["admin"], admin["user"], admin["client"]) == (
        "admin_key",
        True,
        None,
        "127.0.0.1",
    )
    assert (failed["auth"], failed["error"]) == (None, "invalid_admin_key")
    for leaked in (secret, ADMIN_KEY, "premiumuser1_key", _wrong(0), "hidden-query"):
        assert leaked not in log


def test_bodies_without_a_json_content_type_are_read_as_json(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """`curl -d` sends application/x-www-form-urlencoded: /v1/keys and /admin/keys read the body as JSON
    anyway (201); a body that is not a JSON object is a 400 saying the body must be a JSON object."""
    gateway = gateway_factory(_config(simulator))
    me = {"Authorization": "Bearer premiumuser1_key"}
    form = {**me, "Content-Type": "application/x-www-form-urlencoded"}
    created = httpx.post(gateway.url + "/v1/keys", content=b'{"name": "curl"}', headers=form)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "curl"
    bare = httpx.post(gateway.url + "/v1/keys", content=b'{"name": "bare"}', headers=me)
    assert bare.status_code == 201, bare.text
    admin_form = {**ADMIN, "Content-Type": "application/x-www-form-urlencoded"}
    body = b'{"user": "carol", "tier": "free", "name": "k"}'
    assert httpx.post(gateway.url + "/admin/keys", content=body, headers=admin_form).status_code == 201
    for bad, message in [
        (b"name=curl", "The request body is not valid JSON; it must be a JSON object."),
        (b'["curl"]', "The request body must be a JSON object."),
    ]:
        refused = httpx.post(gateway.url + "/v1/keys", content=bad, headers=form)
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert (error["message"], error["type"], error["code"]) == (
            message,
            "invalid_request_error",
            "invalid_json",
        )


def test_a_short_admin_key_stops_the_gateway_from_starting(simulator: ServerProcess, tmp_path: Path) -> None:
    """`maas serve` with a MAAS_ADMIN_KEY shorter than 32 characters exits with a whole-sentence message
    (and without echoing the key); a 32-character key starts."""
    config = demo_dict(simulator.url, limits=False)
    config["server"] = {"port": free_port()}
    config["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    path = tmp_path / "maas.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    short = "short-admin-key-31-characters.."
    assert len(short) == 31
    result = subprocess.run(
        maas("serve", "--config", str(path)),
        env={**os.environ, "MAAS_ADMIN_KEY": short},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "MAAS_ADMIN_KEY is 31 characters long, but the admin key must have at least 32." in result.stderr
    assert "the gateway does not start with a short admin key." in result.stderr
    assert short not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    ok = "x" * 32
    server = ServerProcess(
        maas("serve", "--config", str(path)),
        config["server"]["port"],
        tmp_path / "ok.log",
        env={"MAAS_ADMIN_KEY": ok},
    )
    with server:
        assert (
            httpx.get(server.url + "/admin/users", headers={"Authorization": f"Bearer {ok}"}).status_code
            == 200
        )


def test_a_reload_that_would_leave_a_short_admin_key_is_refused(
    simulator: ServerProcess, tmp_path: Path
) -> None:
    """With a short MAAS_ADMIN_KEY behind a configured digest, a reload that drops the digest is refused
    whole: the log says why, the old admin key keeps working and the new models do not appear."""
    config = _config(simulator)
    config["server"] = {"port": free_port()}
    config["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    path = tmp_path / "maas.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    server = ServerProcess(
        maas("serve", "--config", str(path)),
        config["server"]["port"],
        tmp_path / "gateway.log",
        env={"MAAS_ADMIN_KEY": "too-short"},
    )
    with server:
        del config["admin"]
        config["models"][0]["name"] = "renamed-model"
        path.write_text(yaml.safe_dump(config), "utf-8")
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "Reload refused" in server.log(), "the reload's refusal in the log")
        assert "MAAS_ADMIN_KEY is 9 characters long" in server.log()
        assert httpx.get(server.url + "/admin/users", headers=ADMIN).status_code == 200
        models = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer premiumuser1_key"})
        assert "renamed-model" not in models.text
