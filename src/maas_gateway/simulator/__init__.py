"""The vLLM-compatible simulator: a model server without a GPU."""

from maas_gateway.simulator.app import create_simulator_app
from maas_gateway.simulator.settings import FAILURE_TYPES, FailureType, SimulatorSettings

__all__ = ["FAILURE_TYPES", "FailureType", "SimulatorSettings", "create_simulator_app"]
