"""The Keycloak realm and the gateway's trust in it: what Keycloak imports and what the gateway checks.

Keycloak cannot run in the tests, so the realm file is read as Keycloak reads it at import (placeholders
filled in from the container's environment) and the gateway's configuration is assembled as its pod
assembles it and loaded with the gateway's own loader.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from maas_gateway.deploy import manifests_root, render
from maas_gateway.deploy.keycloak import (
    CLIENT_ID,
    DEFAULT_GATEWAY_URL,
    DEFAULT_KEYCLOAK_URL,
    REALM,
    SECRET_KEYS,
    callback_url,
    issuer_url,
)
from tests.support.keycloak import (
    CHOICES,
    PLACEHOLDER,
    Objects,
    client_of,
    demo_key_tiers,
    imported_realm,
    keycloak_container,
    keycloak_env,
    realm_file,
    render_choices,
)
from tests.support.manifests import (
    CORE_VERSIONS,
    by_id,
    gateway_config,
    kustomize_or_skip,
    parse,
    validate_core,
)
from tests.support.processes import maas

ROOT = manifests_root()


@pytest.fixture(scope="module")
def kustomize() -> list[str]:
    """The kustomize command (kubectl kustomize); required in CI."""
    return kustomize_or_skip()


@pytest.fixture(scope="module")
def renderings(kustomize: list[str]) -> dict[str, Objects]:
    """Each Keycloak choice rendered, with the Secret an operator creates."""
    return render_choices(kustomize)


def test_the_realm_has_the_tiers_the_client_and_the_demo_users() -> None:
    """The realm file is valid JSON: realm maas with the groups free, premium, enterprise and maas-admins;
    registration off and user names not editable (the gateway maps names onto its users); the
    confidential client with the authorization-code flow only, PKCE S256, the portal's callback as its
    one redirect URI, a groups mapper (plain names, in access and ID tokens) and an audience mapper."""
    realm = realm_file()
    assert realm["realm"] == REALM
    assert realm["enabled"] is True
    assert {group["name"] for group in realm["groups"]} == {"free", "premium", "enterprise", "maas-admins"}
    assert realm["registrationAllowed"] is False
    assert realm["editUsernameAllowed"] is False
    assert realm["sslRequired"] == "external"
    client = client_of(realm)
    assert client["publicClient"] is False
    assert client["clientAuthenticatorType"] == "client-secret"
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["redirectUris"] == ["${MAAS_GATEWAY_URL}/portal/auth/callback"]
    assert "*" not in json.dumps(client["redirectUris"] + client["webOrigins"])
    mappers = {mapper["protocolMapper"]: mapper["config"] for mapper in client["protocolMappers"]}
    groups = mappers["oidc-group-membership-mapper"]
    assert groups["claim.name"] == "groups"
    assert groups["full.path"] == "false"
    assert groups["access.token.claim"] == groups["id.token.claim"] == "true"
    audience = mappers["oidc-audience-mapper"]
    assert audience["included.client.audience"] == CLIENT_ID
    assert audience["access.token.claim"] == "true"


def test_the_realm_users_are_the_demo_keys_users_in_their_tiers() -> None:
    """Each demo key's user (config/demo.yaml, and the cluster's keys part) is a realm user in the group
    of the key's tier and no other tier group; the realm's administrator is in maas-admins. Every user
    has the profile Keycloak requires (email, first and last name), so the password grant works."""
    expected = demo_key_tiers()
    cluster = yaml.safe_load((ROOT / "base" / "gateway" / "keys.d" / "50-api-keys.yaml").read_text("utf-8"))
    assert {key["user"]: key["tier"] for key in cluster["api_keys"]} == expected
    users = {user["username"]: user for user in realm_file()["users"]}
    for name, tier in expected.items():
        assert users[name]["groups"] == [f"/{tier}"], name
    assert "/maas-admins" in users["maas-admin"]["groups"]
    assert set(users) == {*expected, "maas-admin"}
    for user in users.values():
        assert user["enabled"] is True
        assert user["email"]
        assert user["firstName"]
        assert user["lastName"]
        assert user["emailVerified"] is True


def test_no_secret_is_written_into_the_tree_or_the_manifests(
    renderings: dict[str, Objects], kustomize: list[str]
) -> None:
    """Every password and the client secret in the realm is a ${VAR} placeholder that Keycloak's pod
    takes from the Secret maas-keycloak, which the rendering does not contain; no variable named like a
    password or secret has a literal value."""
    realm = realm_file()
    credentials = [c["value"] for user in realm["users"] for c in user["credentials"]]
    for value in [*credentials, client_of(realm)["secret"]]:
        assert PLACEHOLDER.fullmatch(value), value
    text = render(CHOICES["gateway-api"], command=kustomize)
    secrets = {name for kind, name in by_id(parse(text)) if kind == "Secret"}
    assert secrets == {"maas-secrets", "maas-gateway-keys"}  # the base's, labelled placeholders and demo
    container = keycloak_container(renderings["default"])
    by_name = {variable["name"]: variable for variable in container["env"]}
    for placeholder in PLACEHOLDER.findall(json.dumps(realm)):
        if placeholder != "MAAS_GATEWAY_URL":
            assert by_name[placeholder]["valueFrom"]["secretKeyRef"]["name"] == "maas-keycloak"
    for objects in renderings.values():
        for item in objects.values():
            if item["kind"] not in ("Deployment", "StatefulSet"):
                continue
            pod = item["spec"]["template"]["spec"]
            for container in pod["containers"] + pod.get("initContainers", []):
                for variable in container.get("env", []):
                    if re.search("PASSWORD|SECRET", variable["name"]):
                        assert "value" not in variable, variable["name"]


@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_the_realm_as_imported_redirects_only_to_the_portal_callback(
    renderings: dict[str, Objects], choice: str
) -> None:
    """With the placeholders filled in as Keycloak does, the client's only redirect URI is the portal's
    callback on the gateway address, its web origin that address, and every password is the Secret's."""
    objects = renderings[choice]
    gateway_url = CHOICES[choice].gateway_url or DEFAULT_GATEWAY_URL
    client = client_of(imported_realm(objects))
    assert client["redirectUris"] == [callback_url(gateway_url)]
    assert client["redirectUris"] == [gateway_url + "/portal/auth/callback"]
    assert client["webOrigins"] == [gateway_url]
    secret = objects[("Secret", "maas-keycloak")]["stringData"]
    assert client["secret"] == secret["client-secret"]
    users = {user["username"]: user for user in imported_realm(objects)["users"]}
    assert users["freeuser1"]["credentials"][0]["value"] == secret["demo-password"]
    assert users["maas-admin"]["credentials"][0]["value"] == secret["realm-admin-password"]


@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_the_gateway_trusts_exactly_the_issuer_keycloak_writes_in_tokens(
    renderings: dict[str, Objects], choice: str, tmp_path: Path
) -> None:
    """The configuration a gateway pod assembles loads with the gateway's own loader; its one issuer is
    Keycloak's KC_HOSTNAME followed by /realms/maas (the `iss` Keycloak writes), its audience the client,
    its groups map onto the realm's groups and the configuration's tiers, and its keys are fetched from
    the Keycloak Service inside the cluster, whose discovery document names that same issuer."""
    objects = renderings[choice]
    config = gateway_config(objects, tmp_path)
    keycloak_url = CHOICES[choice].keycloak_url or DEFAULT_KEYCLOAK_URL
    (issuer,) = config.oidc.issuers
    hostname = keycloak_env(objects)["KC_HOSTNAME"]
    assert hostname == keycloak_url
    assert issuer.issuer == issuer_url(hostname) == f"{keycloak_url}/realms/{REALM}"
    assert issuer.audience == CLIENT_ID
    assert issuer.groups_claim == "groups"
    assert issuer.discovery_url == "http://maas-keycloak:8080/realms/maas/.well-known/openid-configuration"
    service_port = objects[("Service", "maas-keycloak")]["spec"]["ports"][0]["port"]
    assert f"maas-keycloak:{service_port}/" in issuer.discovery_url
    realm_groups = {group["name"] for group in realm_file()["groups"]}
    assert issuer.group_tiers == {"enterprise": "enterprise", "premium": "premium", "free": "free"}
    assert list(issuer.group_tiers) == ["enterprise", "premium", "free"]  # the best tier wins
    assert set(issuer.group_tiers) <= realm_groups
    assert set(issuer.group_tiers.values()) <= set(config.tiers)
    assert issuer.admin_groups == ["maas-admins"]
    assert set(issuer.admin_groups) <= realm_groups
    assert issuer.default_tier is None
    assert (issuer.user_namespace, issuer.user_claim) == ("", "preferred_username")
    gateway_url = CHOICES[choice].gateway_url or DEFAULT_GATEWAY_URL
    assert issuer.portal_client_id == CLIENT_ID == client_of(realm_file())["clientId"]
    assert issuer.portal_redirect_uri == callback_url(gateway_url)
    assert [issuer.portal_redirect_uri] == client_of(imported_realm(objects))["redirectUris"]
    assert issuer.portal_client_secret_env == "MAAS_OIDC_CLIENT_SECRET"
    secret = objects[("Secret", "maas-keycloak")]["stringData"]["client-secret"]
    assert secret not in json.dumps(config.model_dump(mode="json"))  # in the gateway's environment only
    for user, tier in demo_key_tiers().items():
        assert any(key.user == user and key.tier == tier for key in config.api_keys), user


def test_keycloak_secrets_prints_a_new_random_secret_each_time() -> None:
    """`maas deploy keycloak-secrets` prints a valid Secret maas-keycloak in the namespace, with every key
    the component uses, each a fresh random hex value of 48 digits, different on every call."""
    outputs = []
    for _ in range(2):
        result = subprocess.run(
            maas("deploy", "keycloak-secrets", "--namespace", "llm"),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(yaml.safe_load(result.stdout))
    for secret in outputs:
        for version in CORE_VERSIONS:
            assert validate_core(secret, version)
        assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("maas-keycloak", "llm")
        assert set(secret["stringData"]) == set(SECRET_KEYS)
        assert all(re.fullmatch(r"[0-9a-f]{48}", value) for value in secret["stringData"].values())
        assert len(set(secret["stringData"].values())) == len(SECRET_KEYS)
    assert not set(outputs[0]["stringData"].values()) & set(outputs[1]["stringData"].values())


def test_cli_keycloak_secrets_refuses_a_bad_namespace() -> None:
    """A bad namespace exits 2 with a sentence and prints no Secret."""
    result = subprocess.run(
        maas("deploy", "keycloak-secrets", "--namespace", "Not_Valid"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "is not a valid namespace" in result.stderr
