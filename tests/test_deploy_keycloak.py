"""`maas deploy render --keycloak`: Keycloak, its realm and the gateway's OIDC settings, checked statically.

No cluster and no Keycloak image are available to the tests, so every promise the component makes is
checked on the rendered objects: Kubernetes schemas, references between objects, the realm file Keycloak
imports (with its placeholders filled in as Keycloak fills them, from the container's environment), and
the configuration a gateway pod assembles, loaded by the gateway's own loader.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from maas_gateway.deploy import RenderError, RenderOptions, manifests_root, render
from maas_gateway.deploy.keycloak import (
    CLIENT_ID,
    DEFAULT_GATEWAY_URL,
    DEFAULT_KEYCLOAK_URL,
    REALM,
    SECRET_KEYS,
    callback_url,
    issuer_url,
    secret_manifest,
)
from tests.support.manifests import (
    CORE_VERSIONS,
    ObjectId,
    build,
    by_id,
    gateway_config,
    kustomize_or_skip,
    parse,
    resolve_env,
    validate_core,
    validate_custom,
)
from tests.support.processes import maas

ROOT = manifests_root()
Objects = dict[ObjectId, dict[str, Any]]
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CUSTOM_GROUPS = ("gateway.networking.k8s.io/", "monitoring.coreos.com/", "route.openshift.io/")

CHOICES = {
    "default": RenderOptions(keycloak=True),
    "gateway-api": RenderOptions(
        keycloak=True, keycloak_url="http://keycloak.maas.local", gateway_url="http://simulator.maas.local"
    ),
    "openshift": RenderOptions(
        keycloak=True,
        openshift=True,
        namespace="llm",
        keycloak_url="https://sso.apps.example.com",
        gateway_url="https://maas-gateway.apps.example.com",
    ),
    "openshift-port-forward": RenderOptions(keycloak=True, openshift=True),
    "managed-postgres": RenderOptions(keycloak=True, external_postgres="pg.example.com", metrics=False),
}


def _with_secret(objects: Objects, namespace: str) -> Objects:
    """The rendering plus the Secret an operator creates with `maas deploy keycloak-secrets`."""
    secret = yaml.safe_load(secret_manifest(namespace))
    return {**objects, ("Secret", secret["metadata"]["name"]): secret}


@pytest.fixture(scope="module")
def kustomize() -> list[str]:
    return kustomize_or_skip()


@pytest.fixture(scope="module")
def renderings(kustomize: list[str]) -> dict[str, Objects]:
    """Each choice rendered through kustomize, with the generated Secret added as the docs say."""
    return {
        name: _with_secret(by_id(parse(render(options, command=kustomize))), options.namespace or "maas")
        for name, options in CHOICES.items()
    }


@pytest.fixture(scope="module")
def baseline(kustomize: list[str]) -> Objects:
    return by_id(parse(render(RenderOptions(), command=kustomize)))


def _keycloak(objects: Objects) -> dict[str, Any]:
    pod = objects[("Deployment", "maas-keycloak")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def _env(container: dict[str, Any], objects: Objects) -> dict[str, str]:
    return {variable["name"]: resolve_env(variable, objects) for variable in container.get("env", [])}


def _realm(objects: Objects) -> dict[str, Any]:
    """The realm file as Keycloak imports it: each ${VAR} replaced from the Keycloak container's env."""
    (text,) = objects[("ConfigMap", "maas-keycloak-realm")]["data"].values()
    environment = _env(_keycloak(objects), objects)

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda match: environment[match.group(1)], value)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    return dict(fill(json.loads(text)))


def _raw_realm() -> dict[str, Any]:
    return dict(json.loads((ROOT / "components" / "keycloak" / "realm.json").read_text("utf-8")))


def _client(realm: dict[str, Any]) -> dict[str, Any]:
    (client,) = [client for client in realm["clients"] if client["clientId"] == CLIENT_ID]
    return dict(client)


def test_without_keycloak_nothing_of_it_is_rendered(baseline: Objects, kustomize: list[str]) -> None:
    """Without --keycloak no object, reference or configuration part mentions Keycloak."""
    text = render(RenderOptions(), command=kustomize)
    assert "keycloak" not in text.lower()
    assert not [key for key in baseline if "keycloak" in key[1]]


def test_keycloak_adds_its_objects_and_changes_only_the_gateway_wiring(
    baseline: Objects, renderings: dict[str, Objects]
) -> None:
    """--keycloak adds Keycloak's Deployment, Service, settings and realm; of the existing objects only
    the gateway's configuration (one more part) and its configuration step (two variables) change."""
    after = dict(renderings["default"])
    del after[("Secret", "maas-keycloak")]
    added = set(after) - set(baseline)
    changed = {key for key in set(baseline) & set(after) if baseline[key] != after[key]}
    assert set(baseline) <= set(after)
    assert added == {
        ("Deployment", "maas-keycloak"),
        ("Service", "maas-keycloak"),
        ("ConfigMap", "maas-keycloak-settings"),
        ("ConfigMap", "maas-keycloak-realm"),
    }
    assert changed == {("ConfigMap", "maas-gateway-config"), ("StatefulSet", "maas-gateway")}
    before_step = baseline[("StatefulSet", "maas-gateway")]["spec"]["template"]["spec"]["initContainers"][0]
    step = after[("StatefulSet", "maas-gateway")]["spec"]["template"]["spec"]["initContainers"][0]
    assert {v["name"] for v in step["env"]} - {v["name"] for v in before_step["env"]} == {
        "MAAS_KEYCLOAK_URL",
        "MAAS_OIDC_CLIENT_SECRET",
    }
    assert [v for v in before_step["env"] if v not in step["env"]] == []
    parts = after[("ConfigMap", "maas-gateway-config")]["data"]
    assert set(parts) - set(baseline[("ConfigMap", "maas-gateway-config")]["data"]) == {"70-keycloak.yaml"}


def test_every_object_validates_against_the_kubernetes_and_crd_schemas(
    renderings: dict[str, Objects],
) -> None:
    """Every object of every Keycloak choice, the generated Secret included, validates strictly against
    Kubernetes 1.29 and the newest release kubernetes-validate knows; routes against their CRDs."""
    for objects in renderings.values():
        for item in objects.values():
            if item["apiVersion"].startswith(_CUSTOM_GROUPS):
                assert validate_custom(item), f"no CRD schema for {item['kind']}"
                continue
            for version in CORE_VERSIONS:
                assert validate_core(item, version), f"no {version} schema for {item['kind']}"


def test_keycloak_runs_in_production_mode_with_health_probes_and_resources(
    renderings: dict[str, Objects],
) -> None:
    """Keycloak is the official image at a pinned release, started with `start --import-realm` (never
    start-dev), on PostgreSQL, with start-up, readiness and liveness probes on the management port,
    requests and limits, no privilege escalation, and the realm file mounted where it is imported."""
    for name, objects in renderings.items():
        container = _keycloak(objects)
        assert re.fullmatch(r"quay\.io/keycloak/keycloak:\d+\.\d+\.\d+", container["image"]), name
        assert container["args"] == ["start", "--import-realm"]
        assert "start-dev" not in json.dumps(objects[("Deployment", "maas-keycloak")])
        environment = _env(container, objects)
        assert environment["KC_DB"] == "postgres"
        assert environment["KC_DB_URL"] == "jdbc:postgresql://maas-postgres:5432/keycloak"
        assert environment["KC_HEALTH_ENABLED"] == "true"
        assert environment["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"http": 8080, "management": 9000}
        for probe, path in (
            ("startupProbe", "/health/started"),
            ("readinessProbe", "/health/ready"),
            ("livenessProbe", "/health/live"),
        ):
            assert container[probe]["httpGet"] == {"path": path, "port": "management"}, probe
        assert set(container["resources"]) == {"requests", "limits"}
        assert container["resources"]["limits"]["memory"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        pod = objects[("Deployment", "maas-keycloak")]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert "runAsUser" not in pod["securityContext"]
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert mounts["realm"] == "/opt/keycloak/data/import"
        (volume,) = [volume for volume in pod["volumes"] if volume["name"] == "realm"]
        realm_files = objects[("ConfigMap", volume["configMap"]["name"])]["data"]
        assert [file for file in realm_files if file.endswith(".json")] == list(realm_files)
        (step,) = pod["initContainers"]
        assert step["name"] == "create-database"
        assert ("runAsUser" in step["securityContext"]) is not ("openshift" in name)


def test_every_reference_resolves_and_every_secret_key_is_used(renderings: dict[str, Objects]) -> None:
    """Each ConfigMap, Secret and key that Keycloak's pod and the gateway's configuration step name exists
    (the Secret being the generated one); each key of that Secret is used; the Service selects Keycloak's
    pod by a port it has."""
    for objects in renderings.values():
        used: set[str] = set()
        for kind, name in (("Deployment", "maas-keycloak"), ("StatefulSet", "maas-gateway")):
            pod = objects[(kind, name)]["spec"]["template"]["spec"]
            for container in pod["containers"] + pod.get("initContainers", []):
                for variable in container.get("env", []):
                    resolve_env(variable, objects)  # raises KeyError for anything missing
                    ref = variable.get("valueFrom", {}).get("secretKeyRef", {})
                    if ref.get("name") == "maas-keycloak":
                        used.add(ref["key"])
            for volume in pod["volumes"]:
                if "configMap" in volume:
                    assert ("ConfigMap", volume["configMap"]["name"]) in objects
        assert used == set(SECRET_KEYS)
        service = objects[("Service", "maas-keycloak")]["spec"]
        template = objects[("Deployment", "maas-keycloak")]["spec"]["template"]
        assert service["selector"].items() <= template["metadata"]["labels"].items()
        port_names = {port["name"] for port in template["spec"]["containers"][0]["ports"]}
        assert {port["targetPort"] for port in service["ports"]} <= port_names


def test_the_realm_has_the_tiers_the_client_and_the_demo_users() -> None:
    """The realm file is valid JSON: realm maas with the groups free, premium, enterprise and maas-admins;
    registration off and user names not editable (the gateway maps names onto its users); the
    confidential client with the authorization-code flow only, PKCE S256, the portal's callback as its
    one redirect URI, a groups mapper (plain names, in access and ID tokens) and an audience mapper."""
    realm = _raw_realm()
    assert realm["realm"] == REALM
    assert realm["enabled"] is True
    assert {group["name"] for group in realm["groups"]} == {"free", "premium", "enterprise", "maas-admins"}
    assert realm["registrationAllowed"] is False
    assert realm["editUsernameAllowed"] is False
    assert realm["sslRequired"] == "external"
    client = _client(realm)
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


def _demo_keys() -> dict[str, str]:
    demo = yaml.safe_load(resources.files("maas_gateway.config").joinpath("demo.yaml").read_text("utf-8"))
    return {key["user"]: key["tier"] for key in demo["api_keys"]}


def test_the_realm_users_are_the_demo_keys_users_in_their_tiers() -> None:
    """Each demo key's user (config/demo.yaml, and the cluster's keys part) is a realm user in the group
    of the key's tier and no other tier group; the realm's administrator is in maas-admins. Every user
    has the profile Keycloak requires (email, first and last name), so the password grant works."""
    expected = _demo_keys()
    cluster = yaml.safe_load((ROOT / "base" / "gateway" / "keys.d" / "50-api-keys.yaml").read_text("utf-8"))
    assert {key["user"]: key["tier"] for key in cluster["api_keys"]} == expected
    users = {user["username"]: user for user in _raw_realm()["users"]}
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
    realm = _raw_realm()
    credentials = [c["value"] for user in realm["users"] for c in user["credentials"]]
    for value in [*credentials, _client(realm)["secret"]]:
        assert _PLACEHOLDER.fullmatch(value), value
    text = render(CHOICES["gateway-api"], command=kustomize)
    secrets = {name for kind, name in by_id(parse(text)) if kind == "Secret"}
    assert secrets == {"maas-secrets", "maas-gateway-keys"}  # the base's, labelled placeholders and demo
    container = _keycloak(renderings["default"])
    by_name = {variable["name"]: variable for variable in container["env"]}
    for placeholder in _PLACEHOLDER.findall(json.dumps(realm)):
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
    client = _client(_realm(objects))
    assert client["redirectUris"] == [callback_url(gateway_url)]
    assert client["redirectUris"] == [gateway_url + "/portal/auth/callback"]
    assert client["webOrigins"] == [gateway_url]
    secret = objects[("Secret", "maas-keycloak")]["stringData"]
    assert client["secret"] == secret["client-secret"]
    users = {user["username"]: user for user in _realm(objects)["users"]}
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
    hostname = _env(_keycloak(objects), objects)["KC_HOSTNAME"]
    assert hostname == keycloak_url
    assert issuer.issuer == issuer_url(hostname) == f"{keycloak_url}/realms/{REALM}"
    assert issuer.audience == CLIENT_ID
    assert issuer.groups_claim == "groups"
    assert issuer.discovery_url == "http://maas-keycloak:8080/realms/maas/.well-known/openid-configuration"
    service_port = objects[("Service", "maas-keycloak")]["spec"]["ports"][0]["port"]
    assert f"maas-keycloak:{service_port}/" in issuer.discovery_url
    realm_groups = {group["name"] for group in _raw_realm()["groups"]}
    assert issuer.group_tiers == {"enterprise": "enterprise", "premium": "premium", "free": "free"}
    assert list(issuer.group_tiers) == ["enterprise", "premium", "free"]  # the best tier wins
    assert set(issuer.group_tiers) <= realm_groups
    assert set(issuer.group_tiers.values()) <= set(config.tiers)
    assert issuer.admin_groups == ["maas-admins"]
    assert set(issuer.admin_groups) <= realm_groups
    assert issuer.default_tier is None
    assert (issuer.user_namespace, issuer.user_claim) == ("", "preferred_username")
    for user, tier in _demo_keys().items():
        assert any(key.user == user and key.tier == tier for key in config.api_keys), user


def test_a_public_keycloak_url_adds_routes_for_sign_in_only(renderings: dict[str, Objects]) -> None:
    """A host name as --keycloak-url adds an HTTPRoute (or, on OpenShift, TLS Routes) on that host to
    Keycloak's Service, for /realms/ and /resources/ only: never / or the admin console. A loopback
    address (the port-forward default) adds no route."""
    for choice in ("default", "openshift-port-forward", "managed-postgres"):
        kinds = {kind for kind, name in renderings[choice] if "keycloak" in name}
        assert not kinds & {"HTTPRoute", "Route"}, choice
    objects = renderings["gateway-api"]
    route = objects[("HTTPRoute", "maas-keycloak")]["spec"]
    assert route["hostnames"] == ["keycloak.maas.local"]
    assert all(("Gateway", ref["name"]) in objects for ref in route["parentRefs"])
    listener = objects[("Gateway", "maas-ingress")]["spec"]["listeners"][0]["hostname"]
    assert route["hostnames"][0].endswith(listener.lstrip("*"))
    (rule,) = route["rules"]
    assert [match["path"]["value"] for match in rule["matches"]] == ["/realms/", "/resources/"]
    assert rule["backendRefs"] == [{"name": "maas-keycloak", "port": 8080}]
    routes = {name: item["spec"] for (kind, name), item in renderings["openshift"].items() if kind == "Route"}
    keycloak_routes = {name: spec for name, spec in routes.items() if spec["to"]["name"] == "maas-keycloak"}
    assert {spec["path"] for spec in keycloak_routes.values()} == {"/realms/", "/resources/"}
    for spec in keycloak_routes.values():
        assert spec["host"] == "sso.apps.example.com"
        assert spec["port"] == {"targetPort": "http"}
        assert spec["tls"]["termination"] == "edge"


def test_the_documented_overlay_adds_keycloak_to_a_ready_overlay(
    kustomize: list[str], tmp_path: Path
) -> None:
    """An overlay of one's own (docs/deploy.md) that adds the component to a ready overlay and patches the
    addresses builds with kustomize, and the gateway then trusts the patched address."""
    root = Path(os.path.relpath(ROOT, tmp_path / "overlay"))
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [str(root / "overlays" / "kind")],
        "components": [str(root / "components" / "keycloak")],
        "patches": [
            {
                "target": {"kind": "ConfigMap", "name": "maas-keycloak-settings"},
                "patch": "- {op: replace, path: /data/keycloak-url, value: 'https://sso.example.com'}\n"
                "- {op: replace, path: /data/gateway-url, value: 'https://ai.example.com'}\n",
            }
        ],
    }
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay" / "kustomization.yaml").write_text(yaml.safe_dump(overlay), "utf-8")
    objects = _with_secret(by_id(parse(build(kustomize, tmp_path / "overlay"))), "maas")
    (issuer,) = gateway_config(objects, tmp_path / "config").oidc.issuers
    assert issuer.issuer == "https://sso.example.com/realms/maas"
    assert _client(_realm(objects))["redirectUris"] == ["https://ai.example.com/portal/auth/callback"]


def test_every_file_of_the_component_is_used() -> None:
    """Each manifest, part and realm file under components/keycloak is named by one of its
    kustomizations, so nothing shipped is silently left out of a rendering."""
    directory = ROOT / "components" / "keycloak"
    named: set[Path] = set()
    for kustomization in directory.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text("utf-8"))
        files = list(spec.get("resources", []))
        files += [p["path"] for p in spec.get("patches", []) if "path" in p]
        for generator in spec.get("configMapGenerator", []):
            files += [entry.split("=")[-1] for entry in generator.get("files", [])]
        named |= {(kustomization.parent / file).resolve() for file in files}
    shipped = {path.resolve() for path in directory.rglob("*") if path.is_file()}
    assert shipped - named == {path.resolve() for path in directory.rglob("kustomization.yaml")}


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


def test_cli_render_keycloak_flags_map_onto_the_options(kustomize: list[str]) -> None:
    """`maas deploy render --keycloak --keycloak-url U --gateway-url G` prints the same manifests as the
    options, with a trailing slash dropped from each address."""
    flags = [
        "--keycloak",
        "--keycloak-url",
        "http://keycloak.maas.local/",
        "--gateway-url",
        "http://a.maas.local",
    ]
    result = subprocess.run(maas("deploy", "render", *flags), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    options = RenderOptions(
        keycloak=True, keycloak_url="http://keycloak.maas.local", gateway_url="http://a.maas.local"
    )
    assert result.stdout == render(options, command=kustomize)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keycloak_url": "https://sso.example.com"}, "apply to Keycloak; add --keycloak"),
        ({"keycloak": True, "keycloak_url": "sso.example.com"}, "is not an address for Keycloak"),
        ({"keycloak": True, "keycloak_url": "ftp://sso.example.com"}, "is not an address for Keycloak"),
        ({"keycloak": True, "keycloak_url": "https://sso.example.com/auth"}, "without a path"),
        ({"keycloak": True, "gateway_url": "https://ai.example.com/portal"}, "without a path"),
        ({"keycloak": True, "gateway_url": "https://ai.example.com?x=1"}, "without a path"),
        ({"keycloak": True, "keycloak_url": "https://sso.example.com:99999"}, "has no valid port"),
        ({"keycloak": True, "gateway_url": "https://*.example.com"}, "is not an address for the gateway"),
        ({"keycloak": True, "gateway_url": 'https://a.example.com"x'}, "is not an address for the gateway"),
        ({"keycloak": True, "keycloak_url": "https://user:pw@sso.example.com"}, "without a path"),
        ({"keycloak": True, "keycloak_url": "https://sso_1.example.com"}, "is not an address for Keycloak"),
        (
            {"keycloak": True, "openshift": True, "keycloak_url": "http://sso.apps.example.com"},
            "must start with https://",
        ),
    ],
)
def test_render_options_refuse_unusable_addresses(options: dict[str, Any], message: str) -> None:
    """An address that could not become the issuer or the callback is refused with a sentence saying why,
    before kustomize runs."""
    with pytest.raises(RenderError, match=re.escape(message)):
        RenderOptions(**options)


def test_addresses_are_normalised_as_browsers_compare_them() -> None:
    """Scheme and host are lower-cased and a trailing slash dropped, so the issuer the gateway checks is
    the one Keycloak writes; IP addresses (IPv6 in brackets) and ports are kept."""
    options = RenderOptions(
        keycloak=True, keycloak_url="HTTPS://SSO.Example.com:8443/", gateway_url="http://[::1]:8000"
    )
    assert (options.keycloak_url, options.gateway_url) == (
        "https://sso.example.com:8443",
        "http://[::1]:8000",
    )


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
