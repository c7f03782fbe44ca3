"""Which nodes of a cluster can run the GPU models, and why the others cannot yet.

``analyse_nodes`` is a pure function over node objects as the Kubernetes API returns them (the items of
``kubectl get nodes -o json``), so it is tested on recorded node lists. ``fetch_nodes`` reads them from a
cluster with the official ``kubernetes`` client; ``load_nodes_file`` reads a saved list.

The checks follow the origin installer's: a node can run a model when it advertises allocatable
``nvidia.com/gpu``, is Ready and schedulable, carries the label the model manifests select and has no
taint they do not tolerate. A node labelled for GPUs that advertises none is waiting for the NVIDIA
device plugin (usually the GPU Operator installing its driver), which is the commonest surprise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "GPU_PRESENT_LABEL",
    "GPU_RESOURCE",
    "MODEL_NODE_SELECTOR",
    "MODEL_TOLERATED_TAINTS",
    "GpuCheckError",
    "GpuReport",
    "NodeGpu",
    "analyse_nodes",
    "fetch_nodes",
    "load_nodes_file",
]

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
# What the GPU model manifests (components/models/*/inferenceservice.yaml) select and tolerate.
MODEL_NODE_SELECTOR = {GPU_PRESENT_LABEL: "true"}
MODEL_TOLERATED_TAINTS = frozenset({GPU_RESOURCE})

# Labels that say a node has an NVIDIA GPU, set by GPU Feature Discovery, Node Feature Discovery (PCI
# vendor 10de is NVIDIA) or a cloud's node pools.
_BOOLEAN_HINTS = (GPU_PRESENT_LABEL, "feature.node.kubernetes.io/pci-10de.present")
_PRODUCT_LABELS = (
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-accelerator",
    "k8s.amazonaws.com/accelerator",
)

Status = Literal["advertising", "not-advertising", "not-allocatable", "cpu-only"]


class GpuCheckError(Exception):
    """The nodes cannot be read; the message says why and what to do."""


@dataclass(frozen=True)
class NodeGpu:
    name: str
    status: Status
    allocatable: int
    capacity: int
    product: str | None
    memory_mib: int | None
    problems: tuple[str, ...]

    @property
    def usable(self) -> bool:
        """A GPU model can be scheduled here now."""
        return self.status == "advertising" and not self.problems

    @property
    def is_t4(self) -> bool:
        return self.product is not None and "t4" in self.product.lower().replace("_", "-").split("-")


@dataclass(frozen=True)
class GpuReport:
    nodes: tuple[NodeGpu, ...]

    @property
    def gpu_nodes(self) -> list[NodeGpu]:
        return [node for node in self.nodes if node.status != "cpu-only"]

    @property
    def usable(self) -> list[NodeGpu]:
        return [node for node in self.nodes if node.usable]

    def summary(self) -> list[str]:
        """The verdict, one sentence a line."""
        gpu_nodes, usable = self.gpu_nodes, self.usable
        if not gpu_nodes:
            count = len(self.nodes)
            nodes = "The only node has no" if count == 1 else f"None of the {count} nodes has an"
            return [
                f"{nodes} NVIDIA GPU: deploy the simulator (maas deploy render --simulator), or add GPU "
                "nodes and the NVIDIA GPU Operator."
            ]
        lines = []
        if usable:
            gpus = sum(node.allocatable for node in usable)
            lines.append(f"{len(usable)} node(s) can run the GPU models now, with {gpus} GPU(s) allocatable.")
        else:
            lines.append("No node can run the GPU models yet; the notes above say what each one lacks.")
        waiting = [node.name for node in gpu_nodes if node.status == "not-advertising"]
        if waiting:
            lines.append(
                f"Labelled for GPUs but not advertising {GPU_RESOURCE} yet: {', '.join(waiting)}; "
                "wait for the NVIDIA device plugin on them."
            )
        if any(node.is_t4 for node in usable):
            lines.append(
                "NVIDIA T4 GPUs found: deploy Qwen3 with the T4 tuning (maas deploy render --qwen3 "
                "--gpu-t4), which also runs on newer GPUs, whereas the default tuning fails on a T4."
            )
        return lines


def analyse_nodes(nodes: Iterable[Mapping[str, Any]]) -> GpuReport:
    """Explain each node's GPU readiness; ``nodes`` are Node objects as dicts (API field names)."""
    return GpuReport(tuple(_analyse(node) for node in nodes))


def _analyse(node: Mapping[str, Any]) -> NodeGpu:
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    name = str(metadata.get("name", "(unnamed)"))
    labels: Mapping[str, str] = metadata.get("labels") or {}
    capacity = _count((status.get("capacity") or {}).get(GPU_RESOURCE))
    allocatable = _count((status.get("allocatable") or {}).get(GPU_RESOURCE))
    product = next((labels[label] for label in _PRODUCT_LABELS if labels.get(label)), None)
    memory = labels.get("nvidia.com/gpu.memory")
    hint = _gpu_hint(labels)
    state: Status
    problems: list[str] = []
    if capacity == 0 and allocatable == 0:
        if hint is None:
            return NodeGpu(name, "cpu-only", 0, 0, None, None, ())
        state = "not-advertising"
        problems.append(
            f"It is labelled as a GPU node ({hint}) but does not advertise {GPU_RESOURCE} yet: the NVIDIA "
            "device plugin has not registered its GPUs. The GPU Operator's driver and device-plugin pods "
            "usually need several minutes after a node joins; see them with "
            f"`kubectl get pods -A -o wide --field-selector spec.nodeName={name}`."
        )
    elif allocatable == 0:
        state = "not-allocatable"
        problems.append(
            f"It has {capacity} GPU(s) but none is allocatable: the device plugin reports them unhealthy; "
            "read its logs on this node."
        )
    else:
        state = "advertising"
    problems += _scheduling_problems(name, spec, status, labels)
    memory_mib = int(memory) if memory and memory.isdigit() else None
    return NodeGpu(name, state, allocatable, capacity, product, memory_mib, tuple(problems))


def _gpu_hint(labels: Mapping[str, str]) -> str | None:
    for label in _BOOLEAN_HINTS:
        if labels.get(label) == "true":
            return f"{label}=true"
    for label in (*_PRODUCT_LABELS, "nvidia.com/gpu.count"):
        if labels.get(label):
            return f"{label}={labels[label]}"
    return None


def _scheduling_problems(
    name: str, spec: Mapping[str, Any], status: Mapping[str, Any], labels: Mapping[str, str]
) -> list[str]:
    problems = []
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    if not ready:
        problems.append("It is not Ready, so no pod can start on it.")
    if spec.get("unschedulable"):
        problems.append(f"It is cordoned; `kubectl uncordon {name}` lets pods start on it again.")
    for label, value in MODEL_NODE_SELECTOR.items():
        if labels.get(label) != value:
            problems.append(
                f"It lacks the label {label}={value} that the model manifests select; GPU Feature Discovery "
                f"sets it, or run `kubectl label node {name} {label}={value}`."
            )
    for taint in spec.get("taints") or []:
        if (
            taint.get("effect") in ("NoSchedule", "NoExecute")
            and taint.get("key") not in MODEL_TOLERATED_TAINTS
        ):
            shown = taint.get("key", "")
            if taint.get("value"):
                shown += f"={taint['value']}"
            problems.append(
                f"It has the taint {shown}:{taint.get('effect')}, which the model manifests do not tolerate; "
                "add a toleration to the InferenceService or remove the taint."
            )
    return problems


def _count(quantity: object) -> int:
    try:
        return int(str(quantity)) if quantity is not None else 0
    except ValueError:
        return 0


def load_nodes_file(path: Path) -> list[dict[str, Any]]:
    """Nodes saved by ``kubectl get nodes -o json`` (or YAML, a bare list, or a single Node)."""
    try:
        text = path.read_text("utf-8")
        data = json.loads(text) if text.lstrip().startswith(("{", "[")) else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise GpuCheckError(f"Cannot read the node list {path}: {exc}.") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise GpuCheckError(f"The node list {path} is neither JSON nor YAML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    elif isinstance(data, dict) and data.get("kind") == "Node":
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise GpuCheckError(f"{path} holds no node list; save one with `kubectl get nodes -o json`.")
    return data


def fetch_nodes(kubeconfig: str | None = None, context: str | None = None) -> list[dict[str, Any]]:
    """The cluster's nodes, read with the kubeconfig (or the in-cluster service account).

    The ``kubernetes`` client is an optional extra (``maas-gateway[deploy]``): only this command needs it.
    """
    try:
        import urllib3
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise GpuCheckError(
            "Reading nodes from a cluster needs the Kubernetes client: pip install 'maas-gateway[deploy]'. "
            "Or analyse a saved list with --from-file (kubectl get nodes -o json > nodes.json)."
        ) from None

    configuration = client.Configuration()
    try:
        # The kubernetes package ships py.typed, but its config loaders have no annotations.
        config.load_kube_config(  # type: ignore[no-untyped-call]  # unannotated upstream
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (ConfigException, OSError) as first:
        if kubeconfig is not None or context is not None:
            raise GpuCheckError(f"The kubeconfig cannot be used: {first}.") from None
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # unannotated upstream
        except ConfigException:
            raise GpuCheckError(
                "No Kubernetes cluster is configured: set KUBECONFIG or --kubeconfig, run inside a cluster, "
                "or analyse a saved list with --from-file (kubectl get nodes -o json > nodes.json)."
            ) from None
    configuration.retries = 1
    with client.ApiClient(configuration) as api:
        try:
            nodes = client.CoreV1Api(api).list_node(_request_timeout=30)
        except client.ApiException as exc:
            raise GpuCheckError(f"The cluster refused to list nodes ({exc.status} {exc.reason}).") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise GpuCheckError(f"The cluster at {configuration.host} cannot be reached: {exc}.") from None
        return [api.sanitize_for_serialization(item) for item in nodes.items]
