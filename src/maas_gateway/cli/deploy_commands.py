"""``maas deploy``: Kubernetes and OpenShift manifests, GPU node checks, and in-pod configuration assembly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from maas_gateway.deploy.render import (
    DEFAULT_NAMESPACE,
    MODELS,
    RenderError,
    RenderOptions,
    manifests_root,
    render,
)

__all__ = ["app"]

app = typer.Typer(
    help="Deploy to Kubernetes or OpenShift: render manifests, check GPU nodes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


@app.command("render")
def render_command(
    simulator: Annotated[bool, typer.Option(help="The simulator (the default with no model flag).")] = False,
    qwen3: Annotated[bool, typer.Option(help="Qwen3-0.6B on vLLM with one NVIDIA GPU (KServe).")] = False,
    all_models: Annotated[
        bool, typer.Option(help="The simulator, Qwen3 and the Granite, Mistral and Nomic-embed examples.")
    ] = False,
    gpu_t4: Annotated[bool, typer.Option(help="Tune Qwen3 for NVIDIA T4 GPUs (implies --qwen3).")] = False,
    kserve_simulator: Annotated[
        bool, typer.Option(help="Run the simulator as a KServe InferenceService instead of a Deployment.")
    ] = False,
    openshift: Annotated[bool, typer.Option(help="OpenShift Routes and SCC-friendly pods.")] = False,
    no_metrics: Annotated[bool, typer.Option(help="Leave out the ServiceMonitor and the dashboard.")] = False,
    replicas: Annotated[int | None, typer.Option(min=1, help="Gateway replicas (and HPA minimum).")] = None,
    namespace: Annotated[str | None, typer.Option(help="Namespace for everything (default maas).")] = None,
    image: Annotated[str | None, typer.Option(help="The gateway image, such as registry/name:tag.")] = None,
    external_redis: Annotated[
        str | None,
        typer.Option(metavar="HOST", help="Use a managed Redis at HOST instead of one in-cluster."),
    ] = None,
    external_postgres: Annotated[
        str | None, typer.Option(metavar="HOST", help="Use a managed PostgreSQL at HOST instead.")
    ] = None,
    keycloak: Annotated[
        bool, typer.Option(help="Add Keycloak with the realm maas, and point the gateway's OIDC at it.")
    ] = False,
    keycloak_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Keycloak's address for browsers, the issuer of its tokens (default http://127.0.0.1:8080).",
        ),
    ] = None,
    gateway_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The gateway's address for browsers, for the sign-in callback (default http://127.0.0.1:8000).",
        ),
    ] = None,
) -> None:
    """Print the manifests for a choice of models and platform, built with kustomize from the shipped tree.

    Pipe them to `kubectl apply -f -`. The ready overlays are the same choices written down:
    `maas deploy path` shows where they are.
    """
    models: tuple[str, ...]
    if all_models:
        models = MODELS
    else:
        chosen = [("simulator", simulator or kserve_simulator), ("qwen3", qwen3 or gpu_t4)]
        models = tuple(name for name, wanted in chosen if wanted) or ("simulator",)
    try:
        options = RenderOptions(
            models=models,
            kserve_simulator=kserve_simulator,
            gpu_t4=gpu_t4,
            openshift=openshift,
            metrics=not no_metrics,
            replicas=replicas,
            namespace=namespace,
            image=image,
            external_redis=external_redis,
            external_postgres=external_postgres,
            keycloak=keycloak,
            keycloak_url=keycloak_url,
            gateway_url=gateway_url,
        )
        typer.echo(render(options), nl=False)
    except RenderError as exc:
        raise _fail(str(exc)) from None


@app.command("keycloak-secrets")
def keycloak_secrets_command(
    namespace: Annotated[str, typer.Option(help="The namespace of the deployment.")] = DEFAULT_NAMESPACE,
) -> None:
    """Print the Secret maas-keycloak with new random passwords, for `kubectl create -f -`.

    Create it once, before the first start of Keycloak: Keycloak keeps the values it imported then, and
    `kubectl create` (unlike apply) refuses to replace an existing Secret.
    """
    from maas_gateway.deploy.keycloak import secret_manifest

    try:
        RenderOptions(namespace=namespace)
    except RenderError as exc:
        raise _fail(str(exc)) from None
    typer.echo(secret_manifest(namespace), nl=False)


@app.command("path")
def path_command() -> None:
    """Print the directory of the Kustomize tree, for `kubectl apply -k PATH/overlays/NAME`.

    The overlays are kind, gpu, gpu-t4, openshift and all-models (docs/deploy.md).
    """
    try:
        root = manifests_root()
    except RenderError as exc:
        raise _fail(str(exc)) from None
    typer.echo(str(root))


@app.command("check-gpu")
def check_gpu_command(
    kubeconfig: Annotated[str | None, typer.Option(help="The kubeconfig file (default: as kubectl).")] = None,
    context: Annotated[str | None, typer.Option(help="The kubeconfig context to use.")] = None,
    from_file: Annotated[
        Path | None, typer.Option(help="Analyse a saved `kubectl get nodes -o json` instead of a cluster.")
    ] = None,
) -> None:
    """List the cluster's GPU nodes and explain the ones that cannot run a GPU model yet.

    Exits 0 when at least one node can run the GPU models, 1 when none can, 2 when the nodes cannot be read.
    """
    from rich.console import Console
    from rich.table import Table

    from maas_gateway.deploy.gpu import GpuCheckError, analyse_nodes, fetch_nodes, load_nodes_file

    try:
        nodes = load_nodes_file(from_file) if from_file is not None else fetch_nodes(kubeconfig, context)
    except GpuCheckError as exc:
        raise _fail(str(exc)) from None
    report = analyse_nodes(nodes)
    console = Console(highlight=False, soft_wrap=True)
    if report.gpu_nodes:
        table = Table(title="GPU nodes", show_header=True, show_lines=True)
        for column in ("node", "GPUs", "product", "state", "notes"):
            table.add_column(column, overflow="fold")
        for node in report.gpu_nodes:
            state = "[green]usable[/]" if node.usable else f"[yellow]{node.status}[/]"
            gpus = f"{node.allocatable}/{node.capacity}"
            notes = "\n".join(node.problems) or "-"
            table.add_row(node.name, gpus, node.product or "-", state, notes)
        console.print(table)
    for line in report.summary():
        console.print(line, markup=False)
    if not report.usable:
        raise typer.Exit(code=1)


@app.command("assemble-config")
def assemble_config_command(
    directories: Annotated[list[Path], typer.Argument(help="Directories of configuration parts (*.yaml).")],
    output: Annotated[Path, typer.Option(help="Where to write the file; - for standard output.")] = Path("-"),
) -> None:
    """Join configuration parts into one validated file (what the gateway pod's init container runs).

    Parts are read in file-name order across the directories; mappings are merged and lists joined.
    """
    from maas_gateway.deploy.config_parts import ConfigPartsError, assemble

    try:
        config, text = assemble(directories)
    except ConfigPartsError as exc:
        raise _fail(str(exc)) from None
    if str(output) == "-":
        typer.echo(text, nl=False)
    else:
        _write_atomically(output, text)
    typer.echo(
        f"Assembled the configuration: {len(config.models)} models, {len(config.tiers)} tiers, "
        f"{len(config.api_keys)} API keys.",
        err=True,
    )


@app.command("dashboard")
def dashboard_command(
    output: Annotated[Path | None, typer.Option(help="Write the Grafana dashboard JSON here.")] = None,
) -> None:
    """Print the Grafana dashboard built from the metric names (or regenerate the shipped file)."""
    from maas_gateway.deploy.dashboard import dashboard_json

    text = dashboard_json()
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write_atomically(output, text)


def _write_atomically(path: Path, text: str) -> None:
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        raise _fail(f"Cannot write {path}: {exc.strerror}.") from None
