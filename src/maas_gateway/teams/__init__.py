"""Teams (cost centres): named groups of users that keys are created for and usage is charged to."""

from maas_gateway.teams.memory_store import InMemoryTeamStore
from maas_gateway.teams.store import TEAM_NAME, Team, TeamStore

__all__ = ["TEAM_NAME", "InMemoryTeamStore", "Team", "TeamStore"]
