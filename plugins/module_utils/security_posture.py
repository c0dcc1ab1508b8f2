# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's security posture, checked on the objects a cluster holds.

Pure functions behind the ``mlops.platform.security_posture`` filter, which ``playbooks/verify.yml``
feeds with what it reads from the cluster. Each rule returns findings; no finding means the rule
holds. The rules:

* ``psa_labels``: every platform namespace carries a Pod Security Admission ``enforce`` label;
* ``default_deny``: every platform namespace has a NetworkPolicy that selects every pod and denies
  ingress and egress by default (an empty pod selector with both policy types);
* ``pinned_images``: every container image in the platform namespaces has a tag other than
  ``latest``, or a digest;
* ``no_user_cluster_admin``: no ClusterRoleBinding gives ``cluster-admin`` to a user, a group or a
  service account outside ``kube-system`` (the cluster's own ``system:`` subjects are left alone);
* ``no_secrets_in_configmaps``: no ConfigMap in a platform namespace holds a key named like a
  credential with a bare one-line value (structured settings that name Secrets, such as KServe's
  ``credentials`` JSON, are configuration), or a private key;
* ``mlflow_auth``: the MLflow release runs MLflow's ``basic-auth`` app;
* ``jupyterhub_auth``: the JupyterHub release does not use the dummy authenticator, unless the
  environment allows it (the local testbed only).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

RULES = ("psa_labels", "default_deny", "pinned_images", "no_user_cluster_admin", "no_secrets_in_configmaps",
         "mlflow_auth", "jupyterhub_auth")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod")
_SECRET_KEY_RE = re.compile(r"(passw(or)?d|secret|token|api[_-]?key|private[_-]?key|credential)", re.I)
_PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _meta(obj):
    return obj.get("metadata") or {}


def _ref(obj):
    meta = _meta(obj)
    where = "%s/%s" % (meta.get("namespace"), meta.get("name")) if meta.get("namespace") else meta.get("name")
    return "%s %s" % (obj.get("kind", "?"), where)


def _finding(rule, obj, message):
    return {"rule": rule, "object": obj if isinstance(obj, str) else _ref(obj), "message": message}


def image_is_pinned(image):
    """A tag other than ``latest``, or a digest. ``registry:5000/repo`` has no tag."""
    if not isinstance(image, str) or not image:
        return False
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.rsplit(":", 1)[1]
    return bool(tag) and tag != "latest"


def _pod_spec(obj):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def check_psa_labels(namespaces, platform_namespaces):
    found = []
    by_name = dict((_meta(ns).get("name"), ns) for ns in namespaces)
    for name in platform_namespaces:
        ns = by_name.get(name)
        if ns is None:
            found.append(_finding("psa_labels", "Namespace %s" % name, "namespace not found"))
        elif not (_meta(ns).get("labels") or {}).get("pod-security.kubernetes.io/enforce"):
            found.append(_finding("psa_labels", ns, "no pod-security.kubernetes.io/enforce label"))
    return found


def _is_default_deny(policy):
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    types = set(spec.get("policyTypes") or [])
    return not selector.get("matchLabels") and not selector.get("matchExpressions") and {"Ingress", "Egress"} <= types


def check_default_deny(policies, platform_namespaces):
    covered = set(_meta(p).get("namespace") for p in policies if _is_default_deny(p))
    return [_finding("default_deny", "Namespace %s" % name, "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress)")
            for name in platform_namespaces if name not in covered]


def check_pinned_images(workloads, platform_namespaces):
    found = []
    for obj in workloads:
        if obj.get("kind") not in WORKLOAD_KINDS or _meta(obj).get("namespace") not in platform_namespaces:
            continue
        spec = _pod_spec(obj)
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if not image_is_pinned(container.get("image")):
                found.append(_finding("pinned_images", obj, "container %s: image %r has no pinned tag or digest"
                                      % (container.get("name"), container.get("image"))))
    return found


def check_no_user_cluster_admin(bindings):
    found = []
    for binding in bindings:
        role = binding.get("roleRef") or {}
        if role.get("kind") != "ClusterRole" or role.get("name") != "cluster-admin":
            continue
        for subject in binding.get("subjects") or []:
            name = subject.get("name") or ""
            kind = subject.get("kind")
            if name.startswith("system:"):
                continue
            if kind == "ServiceAccount" and subject.get("namespace") == "kube-system":
                continue
            found.append(_finding("no_user_cluster_admin", binding, "grants cluster-admin to %s %s" % (kind, name)))
    return found


def _looks_like_a_literal(value):
    """A bare value (a password, a token), not a structured setting: KServe's ``credentials`` key, for
    one, holds JSON naming the Secrets and keys to read, which is configuration, not a secret."""
    text = value.strip()
    return bool(text) and not text.startswith(("{", "[")) and "\n" not in text


def check_no_secrets_in_configmaps(configmaps, platform_namespaces):
    found = []
    for cm in configmaps:
        if _meta(cm).get("namespace") not in platform_namespaces:
            continue
        for key, value in (cm.get("data") or {}).items():
            value = value if isinstance(value, str) else ""
            if _PRIVATE_KEY_RE.search(value):
                found.append(_finding("no_secrets_in_configmaps", cm, "key %s holds a private key" % key))
            elif _SECRET_KEY_RE.search(key) and _looks_like_a_literal(value):
                found.append(_finding("no_secrets_in_configmaps", cm, "key %s is named like a credential and holds a value" % key))
    return found


def check_mlflow_auth(values):
    """``values``: the MLflow release's values, or None when MLflow is not installed."""
    if values is None:
        return []
    if ((values.get("extraArgs") or {}).get("appName")) != "basic-auth":
        return [_finding("mlflow_auth", "HelmRelease mlflow", "the server does not run MLflow's basic-auth app (extraArgs.appName)")]
    return []


def check_jupyterhub_auth(values, allow_dummy_auth=False):
    """``values``: the JupyterHub release's values, or None when JupyterHub is not installed."""
    if values is None:
        return []
    authenticator = ((((values.get("hub") or {}).get("config") or {}).get("JupyterHub") or {}).get("authenticator_class"))
    if not authenticator:
        return [_finding("jupyterhub_auth", "HelmRelease jupyterhub", "no authenticator_class: JupyterHub falls back to its default")]
    if "dummy" in str(authenticator).lower() and not allow_dummy_auth:
        return [_finding("jupyterhub_auth", "HelmRelease jupyterhub", "dummy authentication outside the local environment")]
    return []


def posture(objects, platform_namespaces, mlflow_values=None, jupyterhub_values=None, allow_dummy_auth=False):
    """Every rule over the cluster's objects: ``{"ok", "findings", "rules": {rule: [findings]}}``."""
    objects = [o for o in objects or [] if isinstance(o, dict)]
    namespaces = sorted(set(platform_namespaces or []))
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append(obj)
    rules = {
        "psa_labels": check_psa_labels(by_kind.get("Namespace", []), namespaces),
        "default_deny": check_default_deny(by_kind.get("NetworkPolicy", []), namespaces),
        "pinned_images": check_pinned_images([o for o in objects if o.get("kind") in WORKLOAD_KINDS], namespaces),
        "no_user_cluster_admin": check_no_user_cluster_admin(by_kind.get("ClusterRoleBinding", [])),
        "no_secrets_in_configmaps": check_no_secrets_in_configmaps(by_kind.get("ConfigMap", []), namespaces),
        "mlflow_auth": check_mlflow_auth(mlflow_values),
        "jupyterhub_auth": check_jupyterhub_auth(jupyterhub_values, allow_dummy_auth),
    }
    findings = [f for rule in RULES for f in rules[rule]]
    return {"ok": not findings, "findings": findings, "rules": rules}
