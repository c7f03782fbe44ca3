"""Portal accounts from the command line: `maas users create --password` and `maas up`'s demo accounts."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from typer.testing import CliRunner

from maas_gateway.cli.main import app
from maas_gateway.database import Database
from maas_gateway.portal.account_service import AccountService
from maas_gateway.portal.passwords import Passwords
from maas_gateway.portal.provisioning import ensure_demo_accounts
from maas_gateway.portal.sql_accounts import SqlAccountStore
from tests.support.portal import csrf_token
from tests.support.processes import ServerProcess, free_port, maas


def _password_works(url: str, user: str, password: str) -> bool:
    async def check() -> bool:
        database = Database(url)
        try:
            service = AccountService(SqlAccountStore(database), Passwords())
            return await service.check_password(user, password) is not None
        finally:
            await database.aclose()

    return asyncio.run(check())


def test_users_create_asks_for_the_password_twice(tmp_path: Path) -> None:
    """`--password` prompts twice; two different answers are asked again, the same one creates the
    account; a second create for the same user changes nothing and exits 1."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}"
    runner = CliRunner()
    command = ["users", "create", "alice", "--password", "--database-url", url]
    created = runner.invoke(
        app, command, input="first-password\nother-password\nright-password\nright-password\n"
    )
    assert created.exit_code == 0, created.output
    assert "do not match" in created.output
    assert "Created a portal account for alice." in created.output
    assert _password_works(url, "alice", "right-password")
    again = runner.invoke(
        app, [*command[:-3], "--password-stdin", "--database-url", url], input="new-password\n"
    )
    assert again.exit_code == 1
    assert _password_works(url, "alice", "right-password")
    short = runner.invoke(
        app, ["users", "create", "bob", "--password-stdin", "--database-url", url], input="short\n"
    )
    assert short.exit_code == 2
    assert "at least 8 characters" in short.output


def test_demo_accounts_are_created_once_and_never_reset(tmp_path: Path) -> None:
    """A fresh database gets dev1 / openshift and admin with MAAS_ADMIN_PASSWORD (nothing generated); a
    second run keeps a password changed in between."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    first = asyncio.run(ensure_demo_accounts(url, "chosen-admin-password", tier="free"))
    assert (first.admin_created, first.admin_password) == (True, None)
    assert _password_works(url, "dev1", "openshift")
    assert _password_works(url, "admin", "chosen-admin-password")

    async def change() -> None:
        database = Database(url)
        try:
            await AccountService(SqlAccountStore(database), Passwords()).set_password(
                "dev1", "changed-password"
            )
        finally:
            await database.aclose()

    asyncio.run(change())
    second = asyncio.run(ensure_demo_accounts(url, "another-password", tier="free"))
    assert (second.admin_created, second.admin_password) == (False, None)
    assert _password_works(url, "dev1", "changed-password")
    assert _password_works(url, "admin", "chosen-admin-password")


def _up(data_dir: Path, log: Path) -> ServerProcess:
    port = free_port()
    command = maas(
        "up", "--port", str(port), "--sim-port", str(free_port()), "--metrics-port", str(free_port()),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    return ServerProcess(command, port, log, env={"MAAS_ADMIN_PASSWORD": "", "COLUMNS": "200"})


def _signs_in(base: str, user: str, password: str) -> bool:
    with httpx.Client(base_url=base, timeout=30) as client:
        token = csrf_token(client.get("/portal/sign-in").text)
        data = {"user": user, "password": password, "csrf_token": token}
        return client.post("/portal/sign-in", data=data).status_code == 303


def test_up_prints_a_generated_admin_password_once_and_keeps_it_on_restart(tmp_path: Path) -> None:
    """`maas up` without MAAS_ADMIN_PASSWORD prints a random admin password that signs in, and dev1 /
    openshift signs in; restarted on the same data, it prints no password and the old one still works."""
    with _up(tmp_path / "data", tmp_path / "first.log") as first:
        match = re.search(r"portal admin account: admin / (\S+) \(shown once", first.log())
        assert match is not None, first.log()
        password = match.group(1)
        assert "portal demo developer: dev1 / openshift" in first.log()
        assert _signs_in(first.url, "admin", password)
        assert _signs_in(first.url, "dev1", "openshift")
    with _up(tmp_path / "data", tmp_path / "second.log") as second:
        assert "existing account, password unchanged" in second.log()
        assert password not in second.log()
        assert _signs_in(second.url, "admin", password)
