# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's security and tenancy objects, rendered as plain manifests.

Pure functions behind the ``mlops.platform.platform_base_manifests`` filter (and so the
``platform_base`` role): namespaces with Pod Security Admission labels, default-deny NetworkPolicies
plus the explicit allows between components, per-team namespaces with a ResourceQuota (GPUs
included), a LimitRange and least-privilege RBAC, and the PriorityClasses for training and
inference. Nothing here talks to a cluster; problems raise :class:`PlatformSpecError` whose message
starts with the path of the offending input.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from collections.abc import Mapping

PSA_LEVELS = ("restricted", "baseline", "privileged")
PART_OF = "mlops-platform"
MANAGED_BY = "mlops.platform"
GPU_QUOTA_KEY = "requests.nvidia.com/gpu"
_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# What a team's users may do in their own namespace: run and watch workloads, keep data, serve
# models. No Secrets beyond reading their own, no RBAC, no quota or policy objects.
TEAM_RULES = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "events", "configmaps"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
]


class PlatformSpecError(ValueError):
    """Bad platform input; the message starts with the path of the offending value."""


def _labels(extra=None):
    labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY}
    labels.update(extra or {})
    return labels


def _check_name(value, path):
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL_RE.match(value):
        raise PlatformSpecError("%s: %r is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)" % (path, value))
    return value


def psa_labels(level, version="latest"):
    """The Pod Security Admission labels that enforce ``level`` (and audit and warn at restricted)."""
    if level not in PSA_LEVELS:
        raise PlatformSpecError("pod_security: %r is not one of %s" % (level, ", ".join(PSA_LEVELS)))
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": version,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }


def namespace_manifest(spec, path):
    """A Namespace with PSA labels; anything looser than ``restricted`` must say why.

    A namespace that a component role also applies (``owner``) must carry labels that agree with the
    role's: ``managed_by`` is the role's ``app.kubernetes.io/managed-by`` value, or empty/None for
    none (the label is then left out), and ``pod_security_audit``/``pod_security_warn`` follow the
    role's audit and warn levels. Labels that differ would flip on every run.
    """
    name = _check_name(spec.get("name"), path + ".name")
    level = spec.get("pod_security") or "restricted"
    if level not in PSA_LEVELS:
        raise PlatformSpecError("%s.pod_security: %r is not one of %s" % (path, level, ", ".join(PSA_LEVELS)))
    reason = spec.get("justification") or ""
    if level != "restricted" and not reason.strip():
        raise PlatformSpecError("%s.justification: namespace %s asks for Pod Security %r; say why (only restricted needs no reason)"
                                % (path, name, level))
    labels = _labels(spec.get("labels"))
    managed_by = spec.get("managed_by", MANAGED_BY)
    if managed_by:
        if not isinstance(managed_by, str):
            raise PlatformSpecError("%s.managed_by: %r must be a string (or empty for no label)" % (path, managed_by))
        labels["app.kubernetes.io/managed-by"] = managed_by
    else:
        labels.pop("app.kubernetes.io/managed-by", None)
    labels.update(psa_labels(level))
    for mode in ("audit", "warn"):
        key = "pod_security_" + mode
        if spec.get(key) is not None:
            if spec[key] not in PSA_LEVELS:
                raise PlatformSpecError("%s.%s: %r is not one of %s" % (path, key, spec[key], ", ".join(PSA_LEVELS)))
            labels["pod-security.kubernetes.io/" + mode] = spec[key]
    metadata = {"name": name, "labels": labels}
    annotations = {}
    if reason:
        annotations["mlops.platform/pod-security-justification"] = reason
    if spec.get("owner"):
        annotations["mlops.platform/owner"] = _check_name(str(spec["owner"]).replace("_", "-"), path + ".owner")
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _peer(peer, path):
    """A NetworkPolicy peer from {namespace, pod_selector} or {cidr}."""
    if not isinstance(peer, Mapping):
        raise PlatformSpecError("%s: must be a mapping with namespace/pod_selector or cidr" % path)
    if peer.get("cidr"):
        return {"ipBlock": {"cidr": peer["cidr"]}}
    out = {}
    if peer.get("namespace"):
        out["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": _check_name(peer["namespace"], path + ".namespace")}}
    if peer.get("pod_selector"):
        out["podSelector"] = {"matchLabels": dict(peer["pod_selector"])}
    if not out:
        raise PlatformSpecError("%s: name a namespace, a pod_selector or a cidr" % path)
    return out


def _ports(ports, path):
    out = []
    for index, port in enumerate(ports or []):
        where = "%s[%d]" % (path, index)
        if isinstance(port, int):
            port = {"port": port}
        if not isinstance(port, Mapping) or not isinstance(port.get("port"), (int, str)) or isinstance(port.get("port"), bool):
            raise PlatformSpecError("%s: a port number (or name) with an optional protocol" % where)
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            raise PlatformSpecError("%s.protocol: %r is not TCP, UDP or SCTP" % (where, protocol))
        out.append({"port": port["port"], "protocol": protocol})
    return out


def default_deny(namespace):
    """Deny all ingress and egress in ``namespace`` except DNS lookups."""
    return [
        {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": namespace, "labels": _labels()},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-dns-egress", "namespace": namespace, "labels": _labels()},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                }],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-same-namespace", "namespace": namespace, "labels": _labels()},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        },
    ]


def allow_policies(allow, path):
    """One explicit allow: ingress in the destination namespace, the matching egress in each source."""
    name = _check_name(allow.get("name"), path + ".name")
    dest_ns = _check_name(allow.get("to_namespace"), path + ".to_namespace")
    dest_pods = dict(allow.get("to_pod_selector") or {})
    sources = allow.get("from") or []
    if not isinstance(sources, list) or not sources:
        raise PlatformSpecError("%s.from: list at least one source (namespace/pod_selector or cidr)" % path)
    peers = [_peer(src, "%s.from[%d]" % (path, i)) for i, src in enumerate(sources)]
    ports = _ports(allow.get("ports"), path + ".ports")
    ingress_rule = {"from": peers}
    if ports:
        ingress_rule["ports"] = ports
    out = [{
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-" + name, "namespace": dest_ns, "labels": _labels()},
        "spec": {"podSelector": {"matchLabels": dest_pods} if dest_pods else {}, "policyTypes": ["Ingress"],
                 "ingress": [ingress_rule]},
    }]
    dest_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": dest_ns}}}
    if dest_pods:
        dest_peer["podSelector"] = {"matchLabels": dest_pods}
    for index, src in enumerate(sources):
        if not src.get("namespace"):
            continue  # a CIDR source lives outside the cluster: nothing to open on its side
        if src.get("egress") is False:
            continue  # a namespace the platform does not manage (e.g. an existing Prometheus): its egress is its own
        egress_rule = {"to": [dest_peer]}
        if ports:
            egress_rule["ports"] = ports
        src_pods = dict(src.get("pod_selector") or {})
        out.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-%s-egress-%d" % (name, index) if len(sources) > 1 else "allow-%s-egress" % name,
                         "namespace": src["namespace"], "labels": _labels()},
            "spec": {"podSelector": {"matchLabels": src_pods} if src_pods else {}, "policyTypes": ["Egress"],
                     "egress": [egress_rule]},
        })
    return out


def egress_cidr_policy(namespace, cidrs, path):
    """Egress from ``namespace`` to addresses outside the cluster (object stores, registries, APIs)."""
    to = []
    for index, entry in enumerate(cidrs):
        if isinstance(entry, str):
            entry = {"cidr": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("cidr"), str):
            raise PlatformSpecError("%s[%d]: a CIDR string or {cidr, except}" % (path, index))
        block = {"cidr": entry["cidr"]}
        if entry.get("except"):
            block["except"] = list(entry["except"])
        to.append({"ipBlock": block})
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-egress-cidrs", "namespace": namespace, "labels": _labels()},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": to}]},
    }


def team_manifests(team, path):
    """A team's ResourceQuota, LimitRange, Role and RoleBinding (its Namespace comes from namespace_manifest)."""
    ns = _check_name(team.get("namespace") or team.get("name"), path + ".namespace")
    quota = team.get("quota") or {}
    hard = {
        "requests.cpu": str(quota.get("requests_cpu", 50)),
        "limits.cpu": str(quota.get("limits_cpu", 100)),
        "requests.memory": str(quota.get("requests_memory", "200Gi")),
        "limits.memory": str(quota.get("limits_memory", "400Gi")),
        GPU_QUOTA_KEY: str(quota.get("gpus", 8)),
        "persistentvolumeclaims": str(quota.get("pvcs", 20)),
    }
    if quota.get("requests_storage"):
        hard["requests.storage"] = str(quota["requests_storage"])
    limits = team.get("limit_range") or {}
    container_limit = {
        "type": "Container",
        "default": {"cpu": str(limits.get("default_cpu", "2")), "memory": str(limits.get("default_memory", "8Gi"))},
        "defaultRequest": {"cpu": str(limits.get("default_request_cpu", "500m")),
                           "memory": str(limits.get("default_request_memory", "1Gi"))},
    }
    if limits.get("max_gpus") is not None:
        container_limit["max"] = {"nvidia.com/gpu": str(limits["max_gpus"])}
    subjects = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"} for user in team.get("users") or []]
    subjects += [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"} for group in team.get("groups") or []]
    team_label = {"mlops.platform/team": team.get("name") or ns}
    out = [
        {"apiVersion": "v1", "kind": "ResourceQuota",
         "metadata": {"name": "team-quota", "namespace": ns, "labels": _labels(team_label)}, "spec": {"hard": hard}},
        {"apiVersion": "v1", "kind": "LimitRange",
         "metadata": {"name": "team-limits", "namespace": ns, "labels": _labels(team_label)}, "spec": {"limits": [container_limit]}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "team-member", "namespace": ns, "labels": _labels(team_label)}, "rules": TEAM_RULES},
    ]
    if subjects:
        out.append({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "team-member", "namespace": ns, "labels": _labels(team_label)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "team-member"},
            "subjects": subjects,
        })
    return out


def priority_class(entry, path):
    name = _check_name(entry.get("name"), path + ".name")
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000000000:
        raise PlatformSpecError("%s.value: %r must be an integer from 0 to 1000000000" % (path, value))
    return {
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": name, "labels": _labels()},
        "value": value,
        "globalDefault": False,
        "preemptionPolicy": entry.get("preemption_policy", "PreemptLowerPriority"),
        "description": entry.get("description") or "mlops.platform priority class %s" % name,
    }


def render_platform_base(namespaces=None, teams=None, allows=None, priority_classes=None, default_deny_enabled=True):
    """All platform-base manifests, grouped: ``namespaces`` first (apply them before the rest), then ``objects``."""
    namespaces = list(namespaces or [])
    teams = list(teams or [])
    ns_manifests = []
    objects = []
    seen = {}
    for index, spec in enumerate(namespaces):
        manifest = namespace_manifest(spec, "namespaces[%d]" % index)
        name = manifest["metadata"]["name"]
        if name in seen:
            raise PlatformSpecError("namespaces[%d].name: %s is listed twice (first at %s)" % (index, name, seen[name]))
        seen[name] = "namespaces[%d]" % index
        ns_manifests.append(manifest)
        if default_deny_enabled and spec.get("default_deny", True):
            objects.extend(default_deny(name))
        if spec.get("egress_cidrs"):
            objects.append(egress_cidr_policy(name, spec["egress_cidrs"], "namespaces[%d].egress_cidrs" % index))
    for index, team in enumerate(teams):
        path = "teams[%d]" % index
        ns_name = team.get("namespace") or team.get("name")
        spec = {"name": ns_name, "pod_security": team.get("pod_security", "restricted"),
                "justification": team.get("justification"), "labels": {"mlops.platform/team": team.get("name") or ns_name}}
        manifest = namespace_manifest(spec, path)
        name = manifest["metadata"]["name"]
        if name in seen:
            raise PlatformSpecError("%s.namespace: %s is already declared at %s" % (path, name, seen[name]))
        seen[name] = path
        ns_manifests.append(manifest)
        if default_deny_enabled:
            objects.extend(default_deny(name))
        if team.get("egress_cidrs"):
            objects.append(egress_cidr_policy(name, team["egress_cidrs"], path + ".egress_cidrs"))
        objects.extend(team_manifests(team, path))
    for index, allow in enumerate(allows or []):
        path = "allows[%d]" % index
        policies = allow_policies(allow, path)
        for policy in policies:
            if policy["metadata"]["namespace"] not in seen:
                raise PlatformSpecError("%s: namespace %s is not declared in namespaces or teams" % (path, policy["metadata"]["namespace"]))
        objects.extend(policies)
    for index, entry in enumerate(priority_classes or []):
        objects.append(priority_class(entry, "priority_classes[%d]" % index))
    return {"namespaces": ns_manifests, "objects": objects}
