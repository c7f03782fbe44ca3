"""``maas sim``: the vLLM-compatible simulator alone, as a model pod would run (docs/simulator.md)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, get_args

import typer

if TYPE_CHECKING:
    from maas_gateway.simulator import FailureType

__all__ = ["sim"]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def _failure_types(values: list[str] | None) -> tuple[FailureType, ...]:
    """The failure types named by repeated options and comma lists, in order and without repeats."""
    from maas_gateway.simulator import FAILURE_TYPES

    names = [name.strip() for value in values or ["server_error"] for name in value.split(",")]
    chosen: list[FailureType] = []
    for name in names:
        match = next((known for known in FAILURE_TYPES if known == name), None)
        if match is None:
            known = ", ".join(FAILURE_TYPES[:-1]) + f" or {FAILURE_TYPES[-1]}"
            raise _fail(f"--failure-type must be {known}, not '{name}'.")
        if match not in chosen:
            chosen.append(match)
    return tuple(chosen)


def sim(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    model: Annotated[list[str] | None, typer.Option(help="Chat/completion model name (repeatable).")] = None,
    embedding_model: Annotated[
        list[str] | None, typer.Option(help="Embedding model name (repeatable).")
    ] = None,
    mode: Annotated[str, typer.Option(help="fixed, echo or random.")] = "fixed",
    ttft: Annotated[float, typer.Option(help="Seconds before the first token.")] = 0.0,
    ttft_std: Annotated[float, typer.Option(help="Standard deviation of --ttft (normal).")] = 0.0,
    itl: Annotated[float, typer.Option(help="Seconds between tokens.")] = 0.0,
    itl_std: Annotated[float, typer.Option(help="Standard deviation of --itl (normal).")] = 0.0,
    max_num_seqs: Annotated[
        int | None, typer.Option(min=1, help="Requests generating at once; more wait in a queue.")
    ] = None,
    kv_cache_tokens: Annotated[
        int | None, typer.Option(min=1, help="KV-cache size in tokens; requests wait for room in it.")
    ] = None,
    max_model_len: Annotated[
        int, typer.Option(min=1, help="Context length: a longer prompt plus max_tokens gets a 400.")
    ] = 8192,
    failure_rate: Annotated[float, typer.Option(help="Share of requests that fail (0-1).")] = 0.0,
    failure_type: Annotated[
        list[str] | None,
        typer.Option(
            help="How they fail: rate_limit, context_length, server_error, hang or cut "
            "(repeatable or a comma list; one is drawn per failure). Default server_error."
        ),
    ] = None,
    retry_after: Annotated[
        int, typer.Option(min=0, help="Seconds in the Retry-After header of a rate_limit failure.")
    ] = 1,
    embedding_dimensions: Annotated[int, typer.Option(help="Length of embedding vectors.")] = 384,
    seed: Annotated[int | None, typer.Option(help="Seed for random mode, jitter and failures.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level: debug, info, warning or error.")] = "warning",
) -> None:
    """Run the vLLM-compatible simulator alone (as a model pod would)."""
    from maas_gateway.server import ServerSpec, configure_logging, run_servers
    from maas_gateway.simulator import SimulatorSettings, create_simulator_app
    from maas_gateway.simulator.settings import Mode

    if mode not in get_args(Mode):
        raise _fail(f"--mode must be fixed, echo or random, not '{mode}'.")
    if not 0 <= failure_rate <= 1:
        raise _fail("--failure-rate must be between 0 and 1.")
    if min(ttft, ttft_std, itl, itl_std) < 0:
        raise _fail("--ttft, --ttft-std, --itl and --itl-std must not be negative.")
    settings = SimulatorSettings(
        models=tuple(model or ["simulator-model"]),
        embedding_models=tuple(embedding_model or ["simulator-embed"]),
        mode=mode,  # type: ignore[arg-type]  # checked against the literal values just above
        time_to_first_token=ttft,
        time_to_first_token_std=ttft_std,
        inter_token_latency=itl,
        inter_token_latency_std=itl_std,
        failure_rate=failure_rate,
        failure_types=_failure_types(failure_type),
        retry_after=retry_after,
        embedding_dimensions=embedding_dimensions,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        kv_cache_tokens=kv_cache_tokens,
        seed=seed,
        rng=random.Random(seed),  # noqa: S311  # simulated output, not security
    )
    configure_logging(log_level)
    run_servers([ServerSpec(create_simulator_app(settings), host, port)])
