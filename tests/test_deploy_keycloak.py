"""`maas deploy render --keycloak`: Keycloak's objects rendered, schema-checked and wired, statically.

No cluster and no Keycloak image are available to the tests, so every promise the component makes about
Kubernetes objects is checked on the rendered objects: schemas, references between objects, routes, and
the options and command-line flags that choose them. The realm and the gateway's trust are checked in
tests/test_deploy_keycloak_realm.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from maas_gateway.deploy import RenderError, RenderOptions, manifests_root, render
from maas_gateway.deploy.keycloak import SECRET_KEYS
from tests.support.keycloak import (
    Objects,
    client_of,
    imported_realm,
    keycloak_container,
    keycloak_env,
    render_choices,
    with_secret,
)
from tests.support.manifests import (
    CORE_VERSIONS,
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
_CUSTOM_GROUPS = ("gateway.networking.k8s.io/", "monitoring.coreos.com/", "route.openshift.io/")


@pytest.fixture(scope="module")
def kustomize() -> list[str]:
    """The kustomize command (kubectl kustomize); required in CI."""
    return kustomize_or_skip()


@pytest.fixture(scope="module")
def renderings(kustomize: list[str]) -> dict[str, Objects]:
    """Each Keycloak choice rendered, with the Secret an operator creates."""
    return render_choices(kustomize)


@pytest.fixture(scope="module")
def baseline(kustomize: list[str]) -> Objects:
    """The default rendering, without Keycloak."""
    return by_id(parse(render(RenderOptions(), command=kustomize)))


def test_without_keycloak_nothing_of_it_is_rendered(baseline: Objects, kustomize: list[str]) -> None:
    """Without --keycloak no object, reference or configuration part mentions Keycloak."""
    text = render(RenderOptions(), command=kustomize)
    assert "keycloak" not in text.lower()
    assert not [key for key in baseline if "keycloak" in key[1]]


def test_keycloak_adds_its_objects_and_changes_only_the_gateway_wiring(
    baseline: Objects, renderings: dict[str, Objects]
) -> None:
    """--keycloak adds Keycloak's Deployment, Service, settings and realm; of the existing objects only
    the gateway's configuration (one more part), its configuration step (two addresses) and the gateway
    container (the client secret, for the portal's sign-in, from Secret maas-keycloak) change."""
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
        "MAAS_GATEWAY_URL",
    }
    assert [v for v in before_step["env"] if v not in step["env"]] == []
    before_gateway = baseline[("StatefulSet", "maas-gateway")]["spec"]["template"]["spec"]["containers"][0]
    gateway = after[("StatefulSet", "maas-gateway")]["spec"]["template"]["spec"]["containers"][0]
    added_env = [v for v in gateway["env"] if v not in before_gateway["env"]]
    assert added_env == [
        {
            "name": "MAAS_OIDC_CLIENT_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "maas-keycloak", "key": "client-secret"}},
        }
    ]
    assert [v for v in before_gateway["env"] if v not in gateway["env"]] == []
    assert {k: v for k, v in gateway.items() if k != "env"} == {
        k: v for k, v in before_gateway.items() if k != "env"
    }
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
        container = keycloak_container(objects)
        assert re.fullmatch(r"quay\.io/keycloak/keycloak:\d+\.\d+\.\d+", container["image"]), name
        assert container["args"] == ["start", "--import-realm"]
        assert "start-dev" not in json.dumps(objects[("Deployment", "maas-keycloak")])
        environment = keycloak_env(objects)
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
    objects = with_secret(by_id(parse(build(kustomize, tmp_path / "overlay"))), "maas")
    (issuer,) = gateway_config(objects, tmp_path / "config").oidc.issuers
    assert issuer.issuer == "https://sso.example.com/realms/maas"
    assert client_of(imported_realm(objects))["redirectUris"] == [
        "https://ai.example.com/portal/auth/callback"
    ]


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
