"""The delivery DB, exposure and network policies of the chart: the data-losing configuration (one
SQLite file per pod) is refused with a message that says what to do, the database URL only ever
comes from the Secret, the Ingress and HTTPRoute reach the API port and nothing else, and the
NetworkPolicies, evaluated by `netpol.py` with the API's rules, allow exactly the connections the
service and its extensions need."""

from __future__ import annotations

import pytest

from conftest import NAMESPACE, RELEASE, ci_values, objects, one, render
from netpol import Address, Pod
from netpol import allowed as allowed_in

FULLNAME = RELEASE


def allowed(policies, source, destination, port, protocol="TCP"):
    """Whether the release's policies, installed in NAMESPACE, allow the connection."""
    return allowed_in(policies, source, destination, port, protocol, namespace=NAMESPACE)


def env_of(found):
    container = one(found, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_bare_defaults_are_refused_until_the_database_secret_is_named():
    with pytest.raises(Exception, match=r"database.mode postgres needs secrets.existingSecret.*database.mode: sqlite"):
        render({}, bare=True)
    env = env_of(objects({"secrets": {"existingSecret": "odg-secrets"}}, bare=True))
    assert env["ODG_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "odg-secrets", "key": "database-url", "optional": False}
    custom = env_of(objects({"secrets": {"databaseUrlKey": "pg"}}))
    assert custom["ODG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "pg"


@pytest.mark.parametrize(
    "values, says",
    [
        ({"replicas": 2, "autoscaling": {"mode": "none"}}, "with 2 replicas"),
        ({"replicas": 1, "autoscaling": {"mode": "hpa"}}, r"with autoscaling \(hpa\): the autoscaler adds pods"),
        ({"replicas": 1, "autoscaling": {"mode": "keda", "minReplicas": 1, "maxReplicas": 1}}, r"with autoscaling \(keda\): the autoscaler adds pods"),
    ],
)
def test_sqlite_with_more_than_one_pod_is_refused(values, says):
    with pytest.raises(Exception, match=f"database.mode sqlite {says}: each pod would keep its own SQLite file"):
        render({"database": {"mode": "sqlite"}, **values}, bare=True)


def test_the_single_pod_sqlite_trial_needs_no_secret_and_sets_no_database_url():
    found = objects(ci_values("sqlite"), bare=True)
    deployment = one(found, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert "ODG_DATABASE_URL" not in env_of(found)
    assert not [o for o in found if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]


def test_a_database_url_in_the_configmap_is_refused():
    with pytest.raises(Exception, match="password into a ConfigMap"):
        render({"config": {"database": {"url": "postgres://odg:secret@db/odg"}}})
    # Connection limits are not secret and stay in the file.
    found = objects({"config": {"database": {"max_connections": 20}}})
    assert "max_connections: 20" in one(found, "ConfigMap", FULLNAME)["data"]["odg.yaml"]


def test_extra_volumes_mount_the_login_keys():
    mount = {"name": "login-keys", "mountPath": "/etc/odg-keys", "readOnly": True}
    volume = {"name": "login-keys", "secret": {"secretName": "odg-login-keys"}}
    pod = one(objects({"extraVolumes": [volume], "extraVolumeMounts": [mount]}), "Deployment")["spec"]["template"]["spec"]
    assert volume in pod["volumes"]
    assert mount in pod["containers"][0]["volumeMounts"]


def test_exposure_is_off_by_default_and_reaches_only_the_api_port():
    assert not [o for o in objects() if o["kind"] in ("Ingress", "HTTPRoute", "NetworkPolicy")]
    found = objects(ci_values("exposed"))
    ingress = one(found, "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    (rule,) = ingress["rules"]
    assert rule["host"] == "delivery.example.org"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}}
    assert ingress["tls"] == [{"secretName": "delivery-tls", "hosts": ["delivery.example.org"]}]
    route = one(found, "HTTPRoute")["spec"]
    assert route["parentRefs"] == [{"name": "shared-gateway", "namespace": "gateway-system", "sectionName": "https"}]
    assert route["hostnames"] == ["delivery.example.org"]
    (route_rule,) = route["rules"]
    service = one(found, "Service")
    http_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    assert route_rule["backendRefs"] == [{"name": FULLNAME, "port": http_port}]
    # Each on its own too, and neither without what it needs.
    only_route = objects({"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}]}})
    assert [o["kind"] for o in only_route if o["kind"] in ("Ingress", "HTTPRoute")] == ["HTTPRoute"]
    with pytest.raises(Exception, match="parentRefs"):
        render({"httpRoute": {"enabled": True}})
    with pytest.raises(Exception, match="ingress.hosts"):
        render({"ingress": {"enabled": True}})


def pods_of(found):
    """The pods the release runs, as the evaluator sees them (labels from the rendered templates)."""
    namespace_labels = {"kubernetes.io/metadata.name": NAMESPACE}
    deployment = one(found, "Deployment")["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in deployment["spec"]["containers"][0]["ports"]}
    pods = {"odg": Pod(NAMESPACE, deployment["metadata"]["labels"], namespace_labels, ports, ip="10.244.0.10")}
    for job in [o for o in found if o["kind"] == "CronJob"]:
        labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        pods[labels["app.kubernetes.io/component"]] = Pod(NAMESPACE, labels, namespace_labels, {}, ip="10.244.0.20")
    return pods


def ns(name, **labels):
    return {"kubernetes.io/metadata.name": name, **labels}


def test_network_policies_allow_exactly_what_the_service_and_extensions_need():
    values = ci_values("exposed")
    # The rest of the namespace unrestricted here; the namespace-wide deny is checked below.
    values["networkPolicy"]["defaultDenyNamespace"] = False
    found = objects(values)
    policies = [o for o in found if o["kind"] == "NetworkPolicy"]
    pods = pods_of(found)
    odg, enumerate_pod, cache_manager = pods["odg"], pods["enumerate"], pods["cache-manager"]
    api = odg.ports["http"]
    admin = odg.ports["admin"]
    neighbour = Pod(NAMESPACE, {"app": "dashboard"}, ns(NAMESPACE))
    ingress_controller = Pod("ingress-nginx", {"app": "controller"}, ns("ingress-nginx"))
    gateway = Pod("gateway-system", {"app": "envoy"}, ns("gateway-system"))
    prometheus = Pod("monitoring", {"app": "prometheus"}, ns("monitoring"))
    stranger = Pod("elsewhere", {"app": "x"}, ns("elsewhere"))
    dns = Pod("kube-system", {"k8s-app": "kube-dns"}, ns("kube-system"))
    redis = Pod("redis", {"app.kubernetes.io/name": "redis"}, ns("redis"))
    postgres, other_host = Address("10.20.0.5"), Address("10.20.0.6")
    registry, internal = Address("34.120.1.2"), Address("10.1.2.3")

    # In: the API from the namespace, the ingress controller and the gateway; the admin port from
    # Prometheus only; nothing from elsewhere.
    for client in (neighbour, ingress_controller, gateway, enumerate_pod):
        assert allowed(policies, client, odg, api), client
    assert not allowed(policies, stranger, odg, api)
    assert not allowed(policies, ingress_controller, odg, admin), "the admin port is never exposed"
    assert allowed(policies, prometheus, odg, admin)
    assert not allowed(policies, prometheus, odg, api)

    # Out: DNS, PostgreSQL at its address, Redis pods, public registries over HTTPS; nothing else.
    assert allowed(policies, odg, dns, 53, "UDP") and allowed(policies, odg, dns, 53, "TCP")
    assert allowed(policies, odg, postgres, 5432)
    assert not allowed(policies, odg, other_host, 5432)
    assert allowed(policies, odg, redis, 6379)
    assert not allowed(policies, odg, redis, 6380)
    assert allowed(policies, odg, registry, 443)
    assert not allowed(policies, odg, registry, 80)
    assert not allowed(policies, odg, internal, 443), "no cluster-internal address as a registry"

    # The extensions: out to the service's API and DNS (the cache manager to Redis for pruning),
    # nothing in, no registry or database.
    assert allowed(policies, enumerate_pod, odg, api)
    assert allowed(policies, cache_manager, odg, api)
    assert allowed(policies, cache_manager, redis, 6379)
    assert allowed(policies, enumerate_pod, dns, 53, "UDP")
    assert not allowed(policies, enumerate_pod, registry, 443)
    assert not allowed(policies, enumerate_pod, postgres, 5432)
    assert not allowed(policies, neighbour, enumerate_pod, 8080)
    assert not allowed(policies, enumerate_pod, odg, admin)

    # Other pods of the namespace are not restricted by this release.
    assert allowed(policies, stranger, neighbour, 80)
    assert allowed(policies, neighbour, registry, 443)
    assert sorted(p["metadata"]["name"] for p in policies) == [FULLNAME, f"{FULLNAME}-extensions"]


def test_the_namespace_wide_deny_isolates_every_other_pod_but_not_the_release():
    found = objects(ci_values("exposed"))
    policies = [o for o in found if o["kind"] == "NetworkPolicy"]
    pods = pods_of(found)
    neighbour = Pod(NAMESPACE, {"app": "dashboard"}, ns(NAMESPACE))
    stranger = Pod("elsewhere", {"app": "x"}, ns("elsewhere"))
    ingress_controller = Pod("ingress-nginx", {"app": "controller"}, ns("ingress-nginx"))
    assert not allowed(policies, stranger, neighbour, 80)
    assert not allowed(policies, neighbour, Address("34.120.1.2"), 443)
    # A pod without its own allowing policy cannot even call odg; the release's own traffic flows.
    assert not allowed(policies, neighbour, pods["odg"], pods["odg"].ports["http"])
    assert allowed(policies, ingress_controller, pods["odg"], pods["odg"].ports["http"])
    assert allowed(policies, pods["enumerate"], pods["odg"], pods["odg"].ports["http"])
    assert allowed(policies, pods["odg"], Address("10.20.0.5"), 5432)


def test_policies_without_the_peers_they_need_are_refused():
    with pytest.raises(Exception, match="networkPolicy.egress.postgres.to"):
        render({"networkPolicy": {"enabled": True}})
    with pytest.raises(Exception, match="networkPolicy.egress.redis.to"):
        render(
            {
                "cache": {"redis": {"enabled": True}},
                "networkPolicy": {"enabled": True, "egress": {"postgres": {"to": [{"ipBlock": {"cidr": "10.0.0.5/32"}}]}}},
            }
        )
    # SQLite needs no database peer; Redis off needs no Redis peer.
    trial = {**ci_values("sqlite"), "networkPolicy": {"enabled": True}}
    (policy,) = [o for o in objects(trial, bare=True) if o["kind"] == "NetworkPolicy"]
    ports = [p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])]
    assert 5432 not in ports and 6379 not in ports and 443 in ports


def test_service_extensions_lists_the_cronjobs_the_release_deploys():
    import yaml

    def listed(values):
        return yaml.safe_load(one(objects(values), "ConfigMap", FULLNAME)["data"]["odg.yaml"])["service_extensions"]

    assert listed({}) == []
    assert listed(ci_values("hpa")) == ["artefactEnumerator", "cacheManager"]
    assert listed(ci_values("keda")) == ["artefactEnumerator"]
