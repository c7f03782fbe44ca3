"""A model served under another name, end to end: a real `maas sim --model internal-name` behind a gateway
model `public-name`, used through the official OpenAI SDK. The client sees only the public name."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.support.configs import demo_dict
from tests.support.gateways import start_gateway
from tests.support.processes import GatewayProcess, ServerProcess, free_port, maas

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]
KEY = "premiumuser1_key"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A simulator that serves only `internal-name`, behind `public-name` (also at the prefix `/public`)
    and `misnamed`, whose served name the simulator does not have, so that it answers a 404 naming it."""
    directory = tmp_path_factory.mktemp("served")
    port = free_port()
    sim_command = maas("sim", "--port", str(port), "--model", "internal-name")
    with ServerProcess(sim_command, port, directory / "sim.log") as sim:
        config = demo_dict(sim.url, limits=False)
        config["models"] += [
            {
                "name": "public-name",
                "served_name": "internal-name",
                "backends": [sim.url],
                "path_prefix": "public",
            },
            {"name": "misnamed", "served_name": "not-on-the-sim", "backends": [sim.url]},
        ]
        server = start_gateway(config, directory)
        yield server
        server.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def test_a_chat_completion_names_the_public_model(client: OpenAI) -> None:
    """`chat.completions.create` for `public-name` is answered by the simulator's `internal-name` and
    says `public-name`."""
    reply = client.chat.completions.create(model="public-name", messages=MESSAGES, max_tokens=3)
    assert reply.model == "public-name"
    assert reply.choices[0].message.content


def test_every_stream_chunk_names_the_public_model(client: OpenAI) -> None:
    """A streamed chat names `public-name` in every chunk, the usage chunk included."""
    stream = client.chat.completions.create(
        model="public-name",
        messages=MESSAGES,
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) >= 6
    assert {chunk.model for chunk in chunks} == {"public-name"}
    assert chunks[-1].usage is not None


def test_legacy_completions_name_the_public_model(client: OpenAI) -> None:
    """`completions.create`, streamed and not, names `public-name` too."""
    reply = client.completions.create(model="public-name", prompt="Once", max_tokens=2)
    assert reply.model == "public-name"
    chunks = list(client.completions.create(model="public-name", prompt="Once", max_tokens=2, stream=True))
    assert chunks
    assert {chunk.model for chunk in chunks} == {"public-name"}


@pytest.mark.parametrize("stream", [False, True])
def test_the_served_name_never_reaches_the_client(gateway: GatewayProcess, stream: bool) -> None:
    """Not a byte of the answer, streamed or whole, carries the served name."""
    body = {"model": "public-name", "messages": MESSAGES, "max_tokens": 5, "stream": stream}
    response = httpx.post(
        gateway.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 200
    assert b"public-name" in response.content
    assert b"internal-name" not in response.content


@pytest.mark.parametrize("stream", [False, True])
def test_a_backends_error_names_the_public_model(client: OpenAI, stream: bool) -> None:
    """The simulator's 404 for a served name it lacks reaches the SDK as a NotFoundError naming the
    public model only."""
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="misnamed", messages=MESSAGES, stream=stream)
    assert "The model `misnamed` does not exist." in caught.value.message
    assert "not-on-the-sim" not in caught.value.response.text


@pytest.mark.parametrize("named", ["public-name", "internal-name"])
def test_a_path_prefix_agrees_with_the_public_or_served_name(gateway: GatewayProcess, named: str) -> None:
    """Under `/public/v1` the body may name the model by its public or its served name; the answer says
    the public one."""
    with OpenAI(base_url=gateway.url + "/public/v1", api_key=KEY, max_retries=0) as sdk:
        reply = sdk.chat.completions.create(model=named, messages=MESSAGES, max_tokens=1)
    assert reply.model == "public-name"


def test_a_path_prefix_refuses_another_model(gateway: GatewayProcess) -> None:
    """Under `/public/v1` a body naming another model is a BadRequestError naming both."""
    sdk = OpenAI(base_url=gateway.url + "/public/v1", api_key=KEY, max_retries=0)
    with sdk, pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="simulator-model", messages=MESSAGES, max_tokens=1)
    assert caught.value.code == "model_mismatch"
    assert caught.value.body == {
        "message": "The path prefix '/public' serves the model 'public-name', but the request body names "
        "the model 'simulator-model'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_mismatch",
    }
