"""``AdminActions`` as the portal calls it: services directly, no HTTP, with a portal user as the actor.

Each change lands in the audit log with that actor once it is done, never when it fails; an approval whose
tier cannot be applied leaves the request pending; an audit log that cannot be written does not undo or
fail the action.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import yaml

from maas_gateway.admin.actions import KEEP, AdminActions
from maas_gateway.audit import Actor, AuditEntry, AuditPage, AuditQuery, InMemoryAuditLog
from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.config import demo_config_text
from maas_gateway.config.schema import GatewayConfig, KeySettings
from maas_gateway.errors import ConflictError, InvalidRequestError, NotFoundError
from maas_gateway.plans import InMemoryPlanRequestStore, PlanRequest
from maas_gateway.plans.service import PlanRequestService
from tests.support.clock import FakeClock

PORTAL_ADMIN = Actor("admin", "portal", "192.0.2.10")


def _actions(audit: Any = None) -> tuple[AdminActions, InMemoryAuditLog, InMemoryPlanRequestStore]:
    config = GatewayConfig.model_validate(yaml.safe_load(demo_config_text()))
    clock = FakeClock(5_000.0)
    repository = InMemoryKeyRepository()
    log = InMemoryAuditLog()
    store = InMemoryPlanRequestStore()
    plans = PlanRequestService(store, lambda: tuple(config.tiers), clock)
    actions = AdminActions(
        KeyService(repository, KeySettings(), clock),
        UserDirectory(repository, ttl=1.0),
        plans,
        audit if audit is not None else log,
        lambda: config,
        clock,
    )
    return actions, log, store


def test_a_portal_users_actions_are_recorded_under_their_name() -> None:
    """A user created, a key created and revoked, a tier changed and a plan request approved, all by the
    portal's `admin`: five entries naming them, their address and `portal`; the key's secret in none."""

    async def main() -> None:
        actions, log, _ = _actions()
        await actions.create_user(PORTAL_ADMIN, "hana", "free", None)
        secret, key = await actions.create_key(PORTAL_ADMIN, "hana", name="laptop", lifetime=3600.0)
        await actions.revoke_key(PORTAL_ADMIN, key.key_id)
        await actions.update_user(PORTAL_ADMIN, "hana", tier="enterprise")
        request = await actions.plans.request("hana", current_tier="enterprise", tier="premium", note=None)
        await actions.approve_plan_request(PORTAL_ADMIN, request.request_id)
        entries = (await log.search(AuditQuery())).entries
        assert [e.action for e in entries] == [
            "plan_request.approve",
            "user.update",
            "key.revoke",
            "key.create",
            "user.create",
        ]
        assert {(e.actor, e.actor_kind, e.address) for e in entries} == {("admin", "portal", "192.0.2.10")}
        assert secret not in str([e.details for e in entries])
        user = await actions.find_user("hana")
        assert (user.tier, user.tier_override) == ("premium", None)  # an admin-made user's own tier moves

    asyncio.run(main())


def test_failed_actions_record_nothing() -> None:
    """An unknown tier, an unknown user, an unknown key and a decided request raise, and the log stays
    empty."""

    async def main() -> None:
        actions, log, _ = _actions()
        with pytest.raises(InvalidRequestError):
            await actions.create_user(PORTAL_ADMIN, "ivan", "platinum", None)
        with pytest.raises(NotFoundError):
            await actions.update_user(PORTAL_ADMIN, "nobody", tier="free")
        with pytest.raises(NotFoundError):
            await actions.revoke_key(PORTAL_ADMIN, "key_none")
        request = await actions.plans.request("freeuser1", current_tier="free", tier="premium", note=None)
        await actions.deny_plan_request(PORTAL_ADMIN, request.request_id, "not now")
        with pytest.raises(ConflictError):
            await actions.approve_plan_request(PORTAL_ADMIN, request.request_id)
        assert [e.action for e in (await log.search(AuditQuery())).entries] == ["plan_request.deny"]

    asyncio.run(main())


def test_an_approval_that_cannot_be_applied_leaves_the_request_pending() -> None:
    """A request of a user who no longer exists cannot be applied: the approval raises, the request is
    pending again (so it can be denied), and nothing is recorded."""

    async def main() -> None:
        actions, log, store = _actions()
        await store.create(PlanRequest("pr_ghost", "ghost", "free", "premium", None, "pending", 1.0))
        with pytest.raises(NotFoundError):
            await actions.approve_plan_request(PORTAL_ADMIN, "pr_ghost")
        stored = await store.get("pr_ghost")
        assert stored is not None
        assert stored.status == "pending"
        assert (await log.search(AuditQuery())).entries == []
        denied = await actions.deny_plan_request(PORTAL_ADMIN, "pr_ghost", None)
        assert denied.status == "denied"

    asyncio.run(main())


class _BrokenAuditLog:
    async def record(
        self, actor: Actor, action: str, subject: str, details: dict[str, Any], at: float
    ) -> AuditEntry:
        raise OSError("disk full")

    async def search(self, query: AuditQuery) -> AuditPage:
        return AuditPage([], None)


def test_an_unwritable_audit_log_does_not_fail_a_done_action(caplog: pytest.LogCaptureFixture) -> None:
    """The action stands and answers; the lost entry is logged as an error naming it."""

    async def main() -> None:
        actions, _, _ = _actions(_BrokenAuditLog())
        updated = await actions.update_user(PORTAL_ADMIN, "freeuser1", tier="premium", disabled=None)
        assert updated.tier_override == "premium"
        again = await actions.update_user(PORTAL_ADMIN, "freeuser1", tier=KEEP, display_name="F")
        assert again.tier_override == "premium"

    with caplog.at_level(logging.ERROR, logger="maas_gateway.audit"):
        asyncio.run(main())
    assert (
        "The audit entry user.update on freeuser1 by admin (192.0.2.10) could not be written." in caplog.text
    )


def test_a_new_tier_for_an_admin_made_user_with_a_configuration_key_is_an_override() -> None:
    """freeuser1 has a key in the configuration file and a row of source `admin` (as `maas users create`
    makes for a portal account): their new tier is kept as an override, the only thing that beats the
    file's tier for that key."""

    async def main() -> None:
        actions, _, _ = _actions()
        await actions.repository.add_user(StoredUser("freeuser1", "free", None, False, 1.0, "admin"))
        moved = await actions.update_user(PORTAL_ADMIN, "freeuser1", tier="premium")
        assert (moved.source, moved.tier_override) == ("admin", "premium")

    asyncio.run(main())
