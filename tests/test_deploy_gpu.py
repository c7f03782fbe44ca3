"""`maas deploy check-gpu`: GPU node analysis on recorded node lists, and reading nodes from a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from maas_gateway.deploy import manifests_root
from maas_gateway.deploy.gpu import (
    MODEL_NODE_SELECTOR,
    MODEL_TOLERATED_TAINTS,
    GpuCheckError,
    analyse_nodes,
    fetch_nodes,
    load_nodes_file,
)
from tests.support.processes import free_port, maas

NODES = Path(__file__).parent / "fixtures" / "nodes"


def _report(name: str) -> Any:
    return analyse_nodes(load_nodes_file(NODES / name))


def test_a_kind_cluster_has_no_gpu_and_is_pointed_at_the_simulator() -> None:
    """A CPU-only cluster has no GPU node; the verdict suggests the simulator."""
    report = _report("kind-cpu-only.json")
    assert report.gpu_nodes == []
    assert report.usable == []
    assert report.summary() == [
        "The only node has no NVIDIA GPU: deploy the simulator (maas deploy render --simulator), or add GPU "
        "nodes and the NVIDIA GPU Operator."
    ]


def test_gpu_operator_nodes_that_advertise_gpus_are_usable() -> None:
    """Nodes with allocatable nvidia.com/gpu, the selected label and only the GPU taint are usable; the
    CPU worker is left out of the GPU list."""
    report = _report("gpu-operator-ready.json")
    assert [(n.name, n.product, n.allocatable, n.memory_mib) for n in report.usable] == [
        ("ip-10-0-2-41.ec2.internal", "NVIDIA-A10G", 1, 23028),
        ("ip-10-0-2-77.ec2.internal", "NVIDIA-L4", 2, 23034),
    ]
    assert len(report.nodes) == 3
    assert report.summary() == ["2 node(s) can run the GPU models now, with 3 GPU(s) allocatable."]


def test_labelled_nodes_without_gpus_are_explained() -> None:
    """A node labelled for GPUs that advertises none is waiting for the device plugin, and says so; a
    cordoned node and a NotReady node are explained too."""
    report = _report("gpu-labelled-waiting.json")
    waiting, cordoned, down = report.gpu_nodes
    assert waiting.status == "not-advertising"
    assert waiting.problems[0].startswith(
        "It is labelled as a GPU node (nvidia.com/gpu.present=true) but does not advertise nvidia.com/gpu "
        "yet: the NVIDIA device plugin has not registered its GPUs."
    )
    assert "--field-selector spec.nodeName=worker-gpu-0" in waiting.problems[0]
    assert cordoned.problems == (
        "It is cordoned; `kubectl uncordon worker-gpu-1` lets pods start on it again.",
    )
    assert down.problems == ("It is not Ready, so no pod can start on it.",)
    assert report.usable == []
    assert report.summary() == [
        "No node can run the GPU models yet; the notes above say what each one lacks.",
        "Labelled for GPUs but not advertising nvidia.com/gpu yet: worker-gpu-0; wait for the NVIDIA "
        "device plugin on them.",
    ]


def test_t4_nodes_recommend_the_t4_tuning() -> None:
    """Usable T4 nodes lead to the advice to render Qwen3 with --gpu-t4."""
    report = _report("t4-cluster.json")
    assert all(node.is_t4 and node.usable for node in report.gpu_nodes)
    assert "(maas deploy render --qwen3 --gpu-t4)" in report.summary()[-1]


def test_what_the_model_manifests_would_trip_on_is_named() -> None:
    """A missing selector label, an untolerated taint and GPUs that are not allocatable each get a
    sentence saying what to do; PreferNoSchedule taints are not problems."""
    gke, tainted, unhealthy = _report("gpu-problems.json").gpu_nodes
    assert gke.is_t4
    assert gke.product == "nvidia-tesla-t4"
    assert gke.problems == (
        "It lacks the label nvidia.com/gpu.present=true that the model manifests select; GPU Feature "
        "Discovery sets it, or run `kubectl label node gke-pool-t4-1 nvidia.com/gpu.present=true`.",
    )
    assert tainted.problems == (
        "It has the taint dedicated=ml:NoSchedule, which the model manifests do not tolerate; add a "
        "toleration to the InferenceService or remove the taint.",
    )
    assert unhealthy.status == "not-allocatable"
    assert unhealthy.problems[0].startswith("It has 8 GPU(s) but none is allocatable")


def test_model_manifests_select_and_tolerate_what_the_check_expects() -> None:
    """Every GPU InferenceService selects MODEL_NODE_SELECTOR and tolerates only MODEL_TOLERATED_TAINTS,
    so the check's verdict matches where the models can be scheduled."""
    services = list((manifests_root() / "components" / "models").glob("*/inferenceservice.yaml"))
    gpu_services = 0
    for path in services:
        predictor = yaml.safe_load(path.read_text("utf-8"))["spec"]["predictor"]
        if "model" not in predictor:
            continue
        gpu_services += 1
        assert predictor["nodeSelector"] == MODEL_NODE_SELECTOR, path
        assert {toleration["key"] for toleration in predictor["tolerations"]} == MODEL_TOLERATED_TAINTS
    assert gpu_services == 4


@pytest.mark.parametrize(
    "shape",
    [
        lambda items: items,
        lambda items: items[0],
        lambda items: {"apiVersion": "v1", "kind": "NodeList", "items": items},
    ],
)
def test_node_files_may_be_a_list_a_node_or_yaml(tmp_path: Path, shape: Any) -> None:
    """Saved nodes are read as `kubectl get nodes -o json|yaml` writes them, or as a bare list or node."""
    items = json.loads((NODES / "t4-cluster.json").read_text("utf-8"))["items"]
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump(shape(items)), "utf-8")
    assert load_nodes_file(path)[0]["metadata"]["name"] == "ip-10-0-3-11.ec2.internal"


def test_a_file_without_nodes_is_refused_with_a_sentence(tmp_path: Path) -> None:
    """Anything that is not a node list gets a sentence saying how to save one."""
    path = tmp_path / "nodes.json"
    path.write_text('{"kind": "PodList", "items": "none"}', "utf-8")
    with pytest.raises(
        GpuCheckError, match=r"holds no node list; save one with `kubectl get nodes -o json`\."
    ):
        load_nodes_file(path)


def test_check_gpu_command_prints_the_table_and_exits_by_verdict() -> None:
    """The command exits 0 when a node can run the models and 1 when none can, explaining each node."""
    ready = subprocess.run(
        maas("deploy", "check-gpu", "--from-file", str(NODES / "t4-cluster.json")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert ready.returncode == 0
    assert "Tesla-T4" in ready.stdout
    assert "usable" in ready.stdout
    blocked = subprocess.run(
        maas("deploy", "check-gpu", "--from-file", str(NODES / "gpu-labelled-waiting.json")),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert blocked.returncode == 1
    assert "not-advertising" in blocked.stdout
    assert "No node can run the GPU models yet" in blocked.stdout


class _FakeApiServer(BaseHTTPRequestHandler):
    """Answers GET /api/v1/nodes like a Kubernetes API server, from a recorded node list."""

    nodes: ClassVar[dict[str, Any]] = {}
    status: ClassVar[int] = 200
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(f"{self.path} {self.headers.get('Authorization')}")
        body = (
            self.nodes
            if self.status == 200
            else {"kind": "Status", "code": self.status, "reason": "Forbidden"}
        )
        data = json.dumps(body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def api_server() -> Iterator[tuple[str, type[_FakeApiServer]]]:
    """A fake API server on loopback serving the GPU Operator node list."""

    class Handler(_FakeApiServer):
        nodes: ClassVar[dict[str, Any]] = json.loads((NODES / "gpu-operator-ready.json").read_text("utf-8"))
        status: ClassVar[int] = 200
        seen: ClassVar[list[str]] = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Handler
    server.shutdown()
    server.server_close()


def _kubeconfig(directory: Path, server: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "fake", "user": {"token": "test-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "current-context": "fake",
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return str(path)


def test_nodes_are_read_with_the_kubernetes_client(
    api_server: tuple[str, type[_FakeApiServer]], tmp_path: Path
) -> None:
    """fetch_nodes lists nodes through the official client with the kubeconfig's credentials, and the
    analysis of what it returns equals that of the recorded list."""
    url, handler = api_server
    nodes = fetch_nodes(_kubeconfig(tmp_path, url))
    assert handler.seen == ["/api/v1/nodes Bearer test-token"]
    recorded = analyse_nodes(load_nodes_file(NODES / "gpu-operator-ready.json"))
    assert analyse_nodes(nodes) == recorded


def test_cluster_failures_are_sentences(api_server: tuple[str, type[_FakeApiServer]], tmp_path: Path) -> None:
    """A refusal, an unreachable server and a missing kubeconfig each raise a sentence saying what failed."""
    url, handler = api_server
    handler.status = 403
    with pytest.raises(GpuCheckError, match=r"The cluster refused to list nodes \(403 "):
        fetch_nodes(_kubeconfig(tmp_path, url))
    with pytest.raises(GpuCheckError, match=r"cannot be reached"):
        fetch_nodes(_kubeconfig(tmp_path, f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(GpuCheckError, match=r"The kubeconfig cannot be used"):
        fetch_nodes(str(tmp_path / "missing-kubeconfig"))
