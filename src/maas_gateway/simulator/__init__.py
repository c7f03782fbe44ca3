"""The vLLM-compatible simulator: a model server without a GPU."""

from maas_gateway.simulator.app import create_simulator_app
from maas_gateway.simulator.generation import SimulatorSettings

__all__ = ["SimulatorSettings", "create_simulator_app"]
