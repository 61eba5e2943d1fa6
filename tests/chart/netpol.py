"""A NetworkPolicy evaluator for the chart checks: decides, from rendered policies, whether a
connection is allowed, with the rules of the Kubernetes API (networking.k8s.io/v1): a pod selected
by any policy of a direction is isolated in that direction, and then a connection needs one rule
of one selecting policy that matches its peer and its port. Supports what the chart renders:
podSelector and namespaceSelector (matchLabels, matchExpressions with In/NotIn/Exists), ipBlock
with except, numeric and named ports."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]
    namespace_labels: dict[str, str]
    # Named container ports -> numbers (named policy ports resolve against the destination pod).
    ports: dict[str, int] = field(default_factory=dict)
    ip: str = "10.244.0.10"


@dataclass(frozen=True)
class Address:
    """Something outside the cluster's pods: a database server, a registry."""

    ip: str


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def peer_matches(peer: dict[str, Any], policy_namespace: str, other: Pod | Address) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
    if isinstance(other, Address):
        return False  # pod and namespace selectors select pods only
    pod_selector = peer.get("podSelector")
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is not None:
        if not selects(namespace_selector, other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return pod_selector is None or selects(pod_selector, other.labels)


def port_matches(rule_ports: list[dict[str, Any]] | None, destination: Pod | Address, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != protocol:
            continue
        wanted = rule_port.get("port")
        if isinstance(wanted, str):
            wanted = destination.ports.get(wanted) if isinstance(destination, Pod) else None
        if wanted is None or wanted == port:
            return True
    return False


def allowed(
    policies: list[dict[str, Any]],
    source: Pod | Address,
    destination: Pod | Address,
    port: int,
    protocol: str = "TCP",
    *,
    namespace: str,
) -> bool:
    """Whether `source` may open a connection to `destination`'s `port`: the source's egress
    (if it is a pod) and the destination's ingress (if it is a pod) must both allow it.
    `namespace` is where policies without `metadata.namespace` live (Helm's release namespace)."""
    return _direction_allows(policies, "Egress", source, destination, port, protocol, namespace) and _direction_allows(
        policies, "Ingress", destination, source, port, protocol, namespace
    )


def _direction_allows(policies, direction, subject, other, port, protocol, default_namespace) -> bool:
    if not isinstance(subject, Pod):
        return True
    namespace_of = lambda policy: policy["metadata"].get("namespace", default_namespace)  # noqa: E731
    selecting = [
        p
        for p in policies
        if namespace_of(p) == subject.namespace
        and selects(p["spec"]["podSelector"], subject.labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    destination = other if direction == "Egress" else subject
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(peer_matches(peer, namespace_of(policy), other) for peer in peers):
                continue
            if port_matches(rule.get("ports"), destination, port, protocol):
                return True
    return False
