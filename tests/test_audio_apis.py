"""Audio transcriptions and translations through the gateway, with the official `openai` SDK against the
simulator: the model taken from the form (or the path prefix), served names put in the form, metered by
what the backend reports, and uploads over the body limit cut off with 413 while they arrive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from maas_gateway.simulator.utility_apis import TRANSCRIPT
from tests.support.gateways import GatewayFactory
from tests.support.inference import endpoint_rows, inference_config
from tests.support.processes import GatewayProcess, ServerProcess
from tests.support.raw_http import connect, read_response, send_until_answered

AUDIO = b"RIFF" + bytes(range(256)) * 40  # 10 KiB and 4 bytes: 11 "input tokens" at 1 KiB each
LIMIT = 1024 * 1024
ENTERPRISE = {"Authorization": "Bearer enterpriseuser1_key"}


@pytest.fixture
def gateway(simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path) -> GatewayProcess:
    config = inference_config(simulator.url, tmp_path / "spool")
    config["server"]["max_body_bytes"] = LIMIT
    # A model whose backend serves it under another name: the form's `model` must be rewritten.
    config["models"].append(
        {"name": "whisper", "backends": [simulator.url], "served_name": "simulator-model"}
    )
    return gateway_factory(config)


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=gateway.url + "/v1", api_key="enterpriseuser1_key", max_retries=0) as sdk:
        yield sdk


def test_transcription_is_metered_by_what_the_backend_reports(
    gateway: GatewayProcess, client: OpenAI
) -> None:
    """`audio.transcriptions.create` returns the text; the ledger charges the tokens the backend
    reported (input and output) under `/v1/audio/transcriptions`."""
    result = client.audio.transcriptions.create(model="simulator-model", file=("a.wav", AUDIO))
    assert result.text == TRANSCRIPT
    row = endpoint_rows(gateway.url, "enterpriseuser1")["/v1/audio/transcriptions"]
    assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (1, 11, 9)


def test_translation_under_a_served_name(gateway: GatewayProcess) -> None:
    """A model with a `served_name` is asked for by its public name: the form reaching the backend
    names the served one (the simulator knows no `whisper`), and the answer is the client's. (The SDK's
    `audio.translations` is deprecated, so httpx sends the form.)"""
    response = httpx.post(
        gateway.url + "/v1/audio/translations",
        files={"file": ("a.wav", AUDIO)},
        data={"model": "whisper"},
        headers=ENTERPRISE,
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == TRANSCRIPT
    assert endpoint_rows(gateway.url, "enterpriseuser1")["/v1/audio/translations"]["prompt_tokens"] == 11


def test_text_answer_is_passed_on_and_metered_by_request(gateway: GatewayProcess, client: OpenAI) -> None:
    """With `response_format="text"` the answer is plain text, passed on as it came; without usage it
    is counted as a request and charged no tokens (never guessed)."""
    text = client.audio.transcriptions.create(
        model="simulator-model", file=("a.wav", AUDIO), response_format="text"
    )
    assert text.strip() == TRANSCRIPT
    row = endpoint_rows(gateway.url, "enterpriseuser1")["/v1/audio/transcriptions"]
    assert (row["requests"], row["total_tokens"], row["failed"]) == (1, 0, 0)


def test_model_from_the_path_prefix(gateway: GatewayProcess) -> None:
    """Under a model's prefix the form needs no `model`: the gateway adds the served name."""
    response = httpx.post(
        gateway.url + "/simulator/v1/audio/transcriptions",
        files={"file": ("a.wav", AUDIO)},
        headers=ENTERPRISE,
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == TRANSCRIPT


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"model": "simulator-model"}}, 400, "invalid_content_type"),
        ({"files": {"file": ("a.wav", AUDIO)}}, 400, "missing_model"),
        ({"files": {"file": ("a.wav", AUDIO)}, "data": {"model": "ghost"}}, 404, "model_not_found"),
        (
            {
                "content": b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nsim',
                "headers": {"content-type": "multipart/form-data; boundary=xyz"},
            },
            400,
            "invalid_multipart",
        ),
        (
            {"content": b"--x--", "headers": {"content-type": "multipart/form-data"}},
            400,
            "invalid_content_type",
        ),
    ],
)
def test_bad_uploads_are_refused_in_openai_shape(
    gateway: GatewayProcess, kwargs: dict[str, object], status: int, code: str
) -> None:
    """Not multipart, no model, an unknown model, a broken body, no boundary: status and code say which."""
    headers = {**ENTERPRISE, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    response = httpx.post(gateway.url + "/v1/audio/transcriptions", headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_sdk_sees_a_too_large_upload_as_413(client: OpenAI) -> None:
    """An upload over the body limit is `openai.APIStatusError` 413 `request_too_large`."""
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="simulator-model", file=("a.wav", b"\0" * (LIMIT + 1)))
    assert caught.value.status_code == 413


def test_huge_chunked_upload_is_cut_off_while_it_arrives(gateway: GatewayProcess) -> None:
    """A chunked upload with no Content-Length is answered 413 soon after it passes the limit: the
    gateway does not wait for (or hold) the 64 MiB the client would send."""
    head = (
        b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer enterpriseuser1_key\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"a" * 65536
    filler = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    with connect(gateway.port) as sock:
        sent, answered = send_until_answered(sock, head, filler, 64 * LIMIT)
        assert answered, f"no answer after {sent} bytes"
        response = read_response(sock)
    assert response.status == 413
    assert response.error()["code"] == "request_too_large"
    assert sent < 8 * LIMIT
