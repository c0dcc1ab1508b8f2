# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One platform spec (``mlops_platform_spec``) validated and turned into every role's variables.

The spec describes the whole platform in the spirit of a KRO ``MLPlatform`` resource (camelCase keys):
``gpu``, ``jupyterhub``, ``mlflow``, ``modelServing``, ``monitoring``, ``teams`` and ``network``.
:func:`spec_errors` collects every problem as ``<path>: <problem>``; :func:`role_vars` raises
:class:`PlatformSpecError` listing them all, or returns a mapping with one entry per role that holds only
the variables (by their real names) the spec decides. Chart references, images of the components and
timeouts are not part of the spec: they stay at role defaults or in the inventory.

Derived settings follow the GPU pool, so the user writes them once: JupyterHub GPU profiles and KServe GPU
predictors ask for the MIG device when MIG runs with the ``mixed`` strategy, are marked time-sliced when the
pool shares GPUs, and tolerate the spot taint on a spot pool; notebooks, team namespaces and serving
namespaces reach the in-cluster MLflow service.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from collections.abc import Mapping

from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import (
    DEFAULT_LABEL_SELECTORS,
    parse_mig_profile,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError, parse_quantity, type_name
from ansible_collections.mlops.platform.plugins.module_utils.platform_base import PlatformSpecError

_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_AKS_POOL_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_MIG_CAPABLE_VM_RE = re.compile(r"(A100|H100|H200|ND96as?r_v4|ND96amsr|ND96isr)", re.IGNORECASE)
_BINARY_MEMORY_RE = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei)?$")
_CIDR_RE = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$|^[0-9a-fA-F:]+/\d{1,3}$")
_LABEL_SELECTOR_RE = re.compile(r"^[A-Za-z0-9./_-]+(!?=[A-Za-z0-9._-]*)?(,[A-Za-z0-9./_-]+(!?=[A-Za-z0-9._-]*)?)*$")
_IMAGE_RE = re.compile(r"^[^\s:@]+(:[^\s:@/]+)?(@sha256:[0-9a-f]{64})?$")
_AKS_MIG_PROFILES = ("MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g")

# The roles' own choices, restated where the spec passes a value straight through.
STORAGE_MODES = {"azure-blob": "azure_blob", "s3": "s3", "minio": "minio", "pvc": "pvc"}
AUTH_TYPES = ("oidc", "azuread", "github", "dummy")
PROFILE_IMAGES = {"cpu": "quay.io/jupyter/scipy-notebook:2025-10-20", "gpu": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20"}

# Pod Security Admission labels of the component namespaces exactly as the owning roles apply them, so that
# platform_base (which runs first) and the role never disagree and a rerun reports no change. managed_by is
# the role's app.kubernetes.io/managed-by value, None where the role sets none.
GPU_OPERATOR_NAMESPACE = {
    "pod_security": "privileged", "pod_security_audit": "privileged", "pod_security_warn": "privileged",
    "managed_by": "mlops.platform.gpu_operator", "owner": "gpu_operator",
    "justification": "The driver, container toolkit, device plugin and dcgm-exporter DaemonSets need host paths, "
                     "host PID and privileged containers to install and expose the NVIDIA driver and devices.",
}
JUPYTERHUB_PSA = "baseline"
JUPYTERHUB_JUSTIFICATION = ("User servers run arbitrary notebook images (root-capable conda and CUDA images) that "
                            "do not meet restricted; audit and warn stay restricted.")
KSERVE_PSA = "restricted"
SERVING_JUSTIFICATION = ("Model servers differ in what they need (run as root, writable root file systems); "
                         "audit and warn stay restricted.")
PROMETHEUS_JUSTIFICATION = "node-exporter of kube-prometheus-stack reads the host's /proc and /sys with host PID and network."

# Ports of the allowed flows.
MLFLOW_SERVER_PORT = 5000  # the container port of the MLflow server (the Service's 80 maps to it)
NOTEBOOK_PORT = 8888
HUB_API_PORT = 8081
DCGM_EXPORTER_PORT = 9400
KSERVE_WEBHOOK_PORT = 9443

SECRET_FIELDS = (
    "jupyterhub.auth.clientSecret", "jupyterhub.auth.dummyPassword", "mlflow.auth.adminPassword",
    "mlflow.database.password", "mlflow.storage.secretAccessKey", "mlflow.storage.connectionString",
)


class _Field(object):
    """One spec key: its kind, default and limits; ``children`` for mappings, ``item`` for lists."""

    def __init__(self, kind, default=None, choices=None, minimum=None, maximum=None, children=None, item=None,
                 required=False):
        self.kind = kind
        self.default = default
        self.choices = choices
        self.minimum = minimum
        self.maximum = maximum
        self.children = children
        self.item = item
        self.required = required


F = _Field


def _m(children, **kwargs):
    return F("map", children=children, **kwargs)


SCHEMA = {
    "gpu": _m({
        "enabled": F("bool", True),
        "provider": F("str", "existing", choices=("existing", "aks")),
        "poolName": F("str", "gpu"),
        "nodePoolSize": F("str", "Standard_NC24ads_A100_v4"),
        "nodeCount": F("int", 1, minimum=0),
        "minNodes": F("int", 0, minimum=0),
        "maxNodes": F("int", 3, minimum=1),
        "autoscaling": F("bool", False),
        "resourceGroup": F("str", ""),
        "clusterName": F("str", ""),
        "availabilityZones": F("list", [], item=F("int", minimum=1, maximum=3)),
        "osDiskSizeGB": F("int", 128, minimum=30),
        "spot": _m({
            "enabled": F("bool", False),
            "maxPrice": F("number", -1),
            "evictionPolicy": F("str", "Delete", choices=("Delete", "Deallocate")),
        }),
        "nodeSelector": F("str", ""),
        "nodeNames": F("list", [], item=F("str")),
        "gpusPerNode": F("int", 1, minimum=1, maximum=16),
        "driverOwner": F("str", "operator", choices=("aks", "operator")),
        "operatorNamespace": F("name", "gpu-operator"),
        "sharing": _m({
            "strategy": F("str", "none", choices=("none", "time-slicing", "mps")),
            "replicas": F("int", 1, minimum=1, maximum=48),
        }),
        "mig": _m({
            "strategy": F("str", "none", choices=("none", "single", "mixed")),
            "profile": F("str", ""),
            "config": F("str", ""),
            "gpuInstanceProfile": F("str", "", choices=("",) + _AKS_MIG_PROFILES),
        }),
    }),
    "jupyterhub": _m({
        "enabled": F("bool", True),
        "namespace": F("name", "jupyterhub"),
        "publicUrl": F("str", ""),
        "auth": _m({
            "type": F("str", "oidc", choices=AUTH_TYPES),
            "clientId": F("str", ""),
            "clientSecret": F("str", ""),
            "tenantId": F("str", ""),
            "authorizeUrl": F("str", ""),
            "tokenUrl": F("str", ""),
            "userdataUrl": F("str", ""),
            "scope": F("list", ["openid", "profile", "email"], item=F("str")),
            "usernameClaim": F("str", "preferred_username"),
            "groupsClaim": F("str", "groups"),
            "loginService": F("str", "OpenID Connect"),
            "dummyPassword": F("str", ""),
            "adminUsers": F("list", [], item=F("str")),
            "adminGroups": F("list", [], item=F("str")),
            "allowedUsers": F("list", [], item=F("str")),
            "allowedGroups": F("list", [], item=F("str")),
            "allowAll": F("bool", False),
        }),
        "userResources": _m({
            "cpu": F("cpu", 2),
            "memory": F("memory", "8Gi"),
            "gpu": F("int", 1, minimum=0),
        }),
        "images": _m({
            "cpu": F("image", PROFILE_IMAGES["cpu"]),
            "gpu": F("image", PROFILE_IMAGES["gpu"]),
        }),
        "profiles": F("list", None, item=_m({
            "name": F("str", required=True),
            "description": F("str", ""),
            "image": F("image"),
            "cpu": F("cpu", required=True),
            "memory": F("memory", required=True),
            "gpu": F("int", 0, minimum=0),
            "default": F("bool", False),
        })),
        "storage": _m({
            "capacity": F("memory", "10Gi"),
            "storageClass": F("str", ""),
        }),
        "culling": _m({
            "enabled": F("bool", True),
            "timeout": F("int", 3600, minimum=1),
            "every": F("int", 600, minimum=1),
        }),
    }),
    "mlflow": _m({
        "enabled": F("bool", True),
        "namespace": F("name", "mlflow"),
        "storage": F("str", "minio", choices=tuple(STORAGE_MODES)),
        "storageAccount": F("str", ""),
        "container": F("str", "mlflow"),
        "bucket": F("str", "mlflow"),
        "endpoint": F("str", ""),
        "region": F("str", ""),
        "accessKeyId": F("str", ""),
        "secretAccessKey": F("str", ""),
        "connectionString": F("str", ""),
        "storageSize": F("memory", "100Gi"),
        "database": _m({
            "type": F("str", "deployed", choices=("deployed", "external", "sqlite")),
            "host": F("str", ""),
            "port": F("int", 5432, minimum=1, maximum=65535),
            "user": F("str", ""),
            "password": F("str", ""),
            "sslmode": F("str", "require", choices=("disable", "allow", "prefer", "require", "verify-ca", "verify-full")),
            "storageSize": F("memory", "20Gi"),
        }),
        "auth": _m({
            "enabled": F("bool", True),
            "adminUsername": F("str", "admin"),
            "adminPassword": F("str", ""),
            "defaultPermission": F("str", "READ", choices=("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")),
        }),
    }),
    "modelServing": _m({
        "enabled": F("bool", True),
        "framework": F("str", "kserve", choices=("kserve",)),
        "namespace": F("name", "kserve"),
        "mode": F("str", "Standard", choices=("Standard", "Knative")),
        "servingPodSecurity": F("str", "baseline", choices=("restricted", "baseline")),
        "services": F("list", [], item=_m({
            "name": F("str", required=True),
            "namespace": F("name", required=True),
            "modelFormat": F("str", "sklearn"),
            "storageUri": F("str", ""),
            "modelUri": F("str", ""),
            "runtimeImage": F("image", required=True),
            "protocolVersion": F("str", "", choices=("", "v1", "v2", "grpc-v1", "grpc-v2")),
            "gpu": F("int", 0, minimum=0),
            "cpu": F("cpu", None),
            "memory": F("memory", None),
            "minReplicas": F("int", 1, minimum=0),
            "maxReplicas": F("int", 1, minimum=1),
        })),
    }),
    "monitoring": _m({
        "enabled": F("bool", True),
        "installPrometheusStack": F("bool", False),
        "prometheusNamespace": F("name", "monitoring"),
        "prometheusSelectorLabels": F("strmap", {}),
        "scrapeInterval": F("duration", "30s"),
        "alerts": _m({
            "enabled": F("bool", True),
            "temperatureWarningCelsius": F("int", 85, minimum=40, maximum=120),
            "temperatureCriticalCelsius": F("int", 92, minimum=40, maximum=120),
            "memoryUsedPercent": F("int", 95, minimum=1, maximum=100),
            "idleUtilizationPercent": F("int", 5, minimum=0, maximum=100),
            "idleMinutes": F("int", 30, minimum=1),
        }),
    }),
    "teams": F("list", [], item=_m({
        "name": F("name", required=True),
        "namespace": F("name", None),
        "users": F("list", [], item=F("str")),
        "groups": F("list", [], item=F("str")),
        "quota": _m({
            "gpus": F("int", 8, minimum=0),
            "requestsCpu": F("cpu", 50),
            "limitsCpu": F("cpu", 100),
            "requestsMemory": F("memory", "200Gi"),
            "limitsMemory": F("memory", "400Gi"),
            "pvcs": F("int", 20, minimum=0),
            "requestsStorage": F("memory", None),
        }),
        "egressCidrs": F("list", [], item=F("cidr")),
    })),
    "network": _m({
        "defaultDeny": F("bool", True),
        "apiServerCidrs": F("list", [], item=F("cidr")),
    }),
}


# The spec speaks JSON-schema type names; k8s_values.type_name gives Python's short ones.
_TYPE_NAMES = {"bool": "boolean", "int": "integer", "float": "number"}


def _type_name(value):
    name = type_name(value)
    return _TYPE_NAMES.get(name, name)


def _check_scalar(field, value, path, errors):
    """Validate one scalar; return the normalised value (or None after recording an error)."""
    kind = field.kind
    if kind == "bool":
        if not isinstance(value, bool):
            errors.append("%s: expected a boolean (true/false), got %s %r" % (path, _type_name(value), value))
            return None
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append("%s: expected an integer, got %s %r" % (path, _type_name(value), value))
            return None
        if field.minimum is not None and value < field.minimum:
            errors.append("%s: must be >= %d (got %d)" % (path, field.minimum, value))
            return None
        if field.maximum is not None and value > field.maximum:
            errors.append("%s: must be <= %d (got %d)" % (path, field.maximum, value))
            return None
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append("%s: expected a number, got %s %r" % (path, _type_name(value), value))
            return None
        return value
    if kind == "cpu":
        try:
            amount = parse_quantity(value, path)
        except GpuSpecError as exc:
            errors.append("%s: %r is not a CPU quantity (expected e.g. 2, 0.5 or '500m'): %s" % (path, value, exc))
            return None
        if amount <= 0 or (isinstance(value, str) and value[-1:] in ("n", "u", "i")):
            errors.append("%s: expected a positive number of cores such as 2, 0.5 or '500m', got %r" % (path, value))
            return None
        return value
    if kind == "memory":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not _BINARY_MEMORY_RE.match(str(value)) \
                or int(re.sub(r"[A-Za-z]+$", "", str(value))) <= 0:
            errors.append("%s: %r is not a memory quantity; use a positive integer with a binary suffix such as '8Gi' "
                          "or '512Mi' (Kubernetes reads 'G' and 'GB' differently or not at all)" % (path, value))
            return None
        return value
    if not isinstance(value, str):
        errors.append("%s: expected a string, got %s %r" % (path, _type_name(value), value))
        return None
    if field.choices is not None and value not in field.choices:
        errors.append("%s: %r is not one of %s" % (path, value, ", ".join(repr(c) for c in field.choices)))
        return None
    if kind == "name" and (len(value) > 63 or not _DNS1123_LABEL_RE.match(value)):
        errors.append("%s: %r is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)" % (path, value))
        return None
    if kind == "image" and (not _IMAGE_RE.match(value) or ("@" not in value and ":" not in value.split("/")[-1])
                            or value.endswith(":latest")):
        errors.append("%s: %r must name an image with a pinned tag or digest (not latest)" % (path, value))
        return None
    if kind == "cidr" and not _CIDR_RE.match(value):
        errors.append("%s: %r is not a CIDR such as 10.0.0.0/16" % (path, value))
        return None
    if kind == "duration" and not re.match(r"^[1-9][0-9]*(s|m|h)$", value):
        errors.append("%s: %r is not a duration such as 30s, 1m or 1h" % (path, value))
        return None
    return value


def _normalise(field, value, path, errors):
    """Validate ``value`` against ``field``; return it with defaults filled in."""
    if field.kind == "map":
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            errors.append("%s: expected a mapping, got %s %r" % (path, _type_name(value), value))
            value = {}
        out = {}
        for key in value:
            if key not in field.children:
                errors.append("%s: unknown key; allowed keys are %s" % (_join(path, key), ", ".join(sorted(field.children))))
        for key, child in field.children.items():
            where = _join(path, key)
            if key not in value or value[key] is None:
                if child.required:
                    errors.append("%s: is required" % where)
                    out[key] = None
                else:
                    out[key] = _normalise(child, None, where, errors) if child.kind == "map" else copy.deepcopy(child.default)
                continue
            out[key] = _normalise(child, value[key], where, errors)
        return out
    if field.kind == "list":
        if not isinstance(value, (list, tuple)):
            errors.append("%s: expected a list, got %s %r" % (path, _type_name(value), value))
            return copy.deepcopy(field.default) if field.default is not None else []
        return [_normalise(field.item, item, "%s[%d]" % (path, index), errors) for index, item in enumerate(value)]
    if field.kind == "strmap":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            errors.append("%s: expected a mapping of label names to string values, got %r" % (path, value))
            return {}
        return dict(value)
    return _check_scalar(field, value, path, errors)


def _join(path, key):
    return "%s.%s" % (path, key) if path else str(key)


def _qty(value):
    return parse_quantity(value, "quantity")


def _cross_checks(spec, allow_dummy_auth, errors):
    """Rules across fields; every message names the path it is about."""
    gpu = spec["gpu"]
    hub = spec["jupyterhub"]
    mlflow = spec["mlflow"]
    serving = spec["modelServing"]
    monitoring = spec["monitoring"]
    sharing = gpu["sharing"]
    mig = gpu["mig"]
    mig_on = mig["strategy"] not in (None, "none")

    # --- GPU pool
    if gpu["minNodes"] is not None and gpu["maxNodes"] is not None and gpu["maxNodes"] < gpu["minNodes"]:
        errors.append("gpu.maxNodes: must be >= gpu.minNodes (got %d < %d)" % (gpu["maxNodes"], gpu["minNodes"]))
    if gpu["provider"] == "aks":
        if gpu["poolName"] is not None and not _AKS_POOL_RE.match(gpu["poolName"]):
            errors.append("gpu.poolName: %r is not an AKS pool name (1-12 lower-case letters and digits, starting with a letter)"
                          % gpu["poolName"])
        for key in ("resourceGroup", "clusterName"):
            if gpu["enabled"] and not gpu[key]:
                errors.append("gpu.%s: is required with gpu.provider aks" % key)
        if gpu["nodeSelector"] or gpu["nodeNames"]:
            errors.append("gpu.nodeSelector: only with gpu.provider existing (an AKS pool's nodes are its own)")
        if not re.match(r"^Standard_N[CDV]", gpu["nodePoolSize"] or ""):
            errors.append("gpu.nodePoolSize: %r is not an Azure GPU VM size (Standard_NC..., Standard_ND..., Standard_NV...)"
                          % gpu["nodePoolSize"])
        if gpu["autoscaling"] and None not in (gpu["nodeCount"], gpu["minNodes"], gpu["maxNodes"]) \
                and not gpu["minNodes"] <= gpu["nodeCount"] <= gpu["maxNodes"]:
            errors.append("gpu.nodeCount: with autoscaling it must lie between gpu.minNodes and gpu.maxNodes (got %d, not in %d..%d)"
                          % (gpu["nodeCount"], gpu["minNodes"], gpu["maxNodes"]))
        if not gpu["autoscaling"] and gpu["nodeCount"] == 0:
            errors.append("gpu.nodeCount: 0 nodes without autoscaling leaves the pool empty; set gpu.autoscaling: true with gpu.minNodes: 0")
    else:
        if gpu["enabled"] and bool(gpu["nodeSelector"]) == bool(gpu["nodeNames"]):
            errors.append("gpu.nodeSelector: provider existing needs exactly one of gpu.nodeSelector or gpu.nodeNames")
        if gpu["nodeSelector"] and not _LABEL_SELECTOR_RE.match(gpu["nodeSelector"]):
            errors.append("gpu.nodeSelector: %r is not a label selector such as accelerator=nvidia-gpu" % gpu["nodeSelector"])
        if gpu["driverOwner"] == "aks":
            errors.append("gpu.driverOwner: aks installs the driver only on AKS pools; with gpu.provider existing use operator")
        if gpu["autoscaling"]:
            errors.append("gpu.autoscaling: the autoscaler belongs to gpu.provider aks (existing nodes are counted in gpu.nodeCount)")
        if gpu["spot"]["maxPrice"] not in (None, -1):
            errors.append("gpu.spot.maxPrice: a spot price belongs to gpu.provider aks")
        if mig["gpuInstanceProfile"]:
            errors.append("gpu.mig.gpuInstanceProfile: only with gpu.provider aks")
    price = gpu["spot"]["maxPrice"]
    if price is not None and price != -1 and price <= 0:
        errors.append("gpu.spot.maxPrice: must be -1 (up to the on-demand price) or a positive price per hour (got %r)" % price)
    # --- sharing and MIG
    if sharing["strategy"] == "none" and sharing["replicas"] not in (None, 1):
        errors.append("gpu.sharing.replicas: must be 1 without sharing (got %d); set gpu.sharing.strategy" % sharing["replicas"])
    if sharing["strategy"] in ("time-slicing", "mps") and sharing["replicas"] is not None and sharing["replicas"] < 2:
        errors.append("gpu.sharing.replicas: %s needs at least 2 replicas per GPU (got %d)" % (sharing["strategy"], sharing["replicas"]))
    if mig_on and sharing["strategy"] not in (None, "none"):
        errors.append("gpu.sharing.strategy: %s cannot be combined with gpu.mig.strategy %s (a MIG device is already a share "
                      "of a GPU; the roles advertise either MIG devices or shared GPUs)" % (sharing["strategy"], mig["strategy"]))
    if mig_on:
        parsed = parse_mig_profile(mig["profile"])
        if parsed is None:
            errors.append("gpu.mig.profile: %r is not a MIG profile such as 1g.10gb or 3g.40gb" % mig["profile"])
        if gpu["provider"] == "aks":
            if not mig["gpuInstanceProfile"]:
                errors.append("gpu.mig.gpuInstanceProfile: MIG on an AKS pool needs the pool's GPU instance profile (MIG1g..MIG7g)")
            elif parsed is not None and mig["gpuInstanceProfile"] != "MIG%dg" % parsed.slices:
                errors.append("gpu.mig.gpuInstanceProfile: %s does not match gpu.mig.profile %s (expected MIG%dg)"
                              % (mig["gpuInstanceProfile"], mig["profile"], parsed.slices))
            if gpu["nodePoolSize"] and not _MIG_CAPABLE_VM_RE.search(gpu["nodePoolSize"]):
                errors.append("gpu.mig.strategy: %s has no MIG-capable GPU (A100, H100 or H200 sizes such as "
                              "Standard_ND96asr_v4 or Standard_NC40ads_H100_v5)" % gpu["nodePoolSize"])
        if mig["config"] and not re.match(r"^[A-Za-z0-9][-A-Za-z0-9_.]*$", mig["config"]):
            errors.append("gpu.mig.config: %r is not a mig-parted configuration name such as all-1g.10gb" % mig["config"])
    else:
        for key in ("profile", "config", "gpuInstanceProfile"):
            if mig[key]:
                errors.append("gpu.mig.%s: set only with gpu.mig.strategy single or mixed" % key)
    # --- JupyterHub
    if hub["enabled"]:
        auth = hub["auth"]
        kind = auth["type"]
        if kind == "dummy" and not allow_dummy_auth:
            errors.append("jupyterhub.auth.type: dummy (any name and password logs in) is allowed only where the inventory sets "
                          "mlops_allow_dummy_auth: true (a throw-away environment)")
        if kind not in (None, "dummy"):
            if not (hub["publicUrl"] or "").startswith("https://"):
                errors.append("jupyterhub.publicUrl: the https:// address users open is required with auth type %s (got %r)"
                              % (kind, hub["publicUrl"]))
            if not auth["clientId"]:
                errors.append("jupyterhub.auth.clientId: is required with auth type %s" % kind)
            if not auth["clientSecret"]:
                errors.append("jupyterhub.auth.clientSecret: is required with auth type %s" % kind)
            if not (auth["allowAll"] or auth["adminUsers"] or auth["adminGroups"] or auth["allowedUsers"] or auth["allowedGroups"]
                    or any(t.get("users") or t.get("groups") for t in spec["teams"] if isinstance(t, Mapping))):
                errors.append("jupyterhub.auth.allowedGroups: nobody could log in; list users or groups (teams' users and groups "
                              "count) or set jupyterhub.auth.allowAll: true")
        if kind == "azuread" and not auth["tenantId"]:
            errors.append("jupyterhub.auth.tenantId: is required with auth type azuread")
        if kind == "oidc":
            for key in ("authorizeUrl", "tokenUrl", "userdataUrl"):
                if not (auth[key] or "").startswith("https://"):
                    errors.append("jupyterhub.auth.%s: the identity provider's https:// endpoint is required with auth type oidc" % key)
        if kind == "github" and auth["adminGroups"]:
            errors.append("jupyterhub.auth.adminGroups: GitHub has no admin groups; list admins in jupyterhub.auth.adminUsers")
        if kind != "azuread" and auth["tenantId"]:
            errors.append("jupyterhub.auth.tenantId: only with auth type azuread")
        gpus_wanted = [("jupyterhub.userResources.gpu", hub["userResources"]["gpu"])]
        if hub["profiles"] is not None:
            if not hub["profiles"]:
                errors.append("jupyterhub.profiles: leave it out (profiles are derived from jupyterhub.userResources) or list at least one")
            names = {}
            defaults = []
            for index, profile in enumerate(hub["profiles"]):
                if not isinstance(profile, Mapping):
                    continue
                where = "jupyterhub.profiles[%d]" % index
                if profile["name"] in names:
                    errors.append("%s.name: %r is already used by jupyterhub.profiles[%d]" % (where, profile["name"], names[profile["name"]]))
                names.setdefault(profile["name"], index)
                if profile["default"]:
                    defaults.append(index)
                gpus_wanted.append((where + ".gpu", profile["gpu"]))
            if len(defaults) > 1:
                errors.append("jupyterhub.profiles[%d].default: only one profile may be the default (jupyterhub.profiles[%d] is)"
                              % (defaults[1], defaults[0]))
        for where, wanted in gpus_wanted:
            if wanted and not gpu["enabled"] and where == "jupyterhub.userResources.gpu":
                continue  # derived profiles simply offer no GPU profile without a pool
            if wanted and not gpu["enabled"]:
                errors.append("%s: asks for GPUs but gpu.enabled is false" % where)
            elif wanted and gpu["gpusPerNode"] and wanted > gpu["gpusPerNode"]:
                errors.append("%s: %d GPUs do not fit on one node (gpu.gpusPerNode is %d)" % (where, wanted, gpu["gpusPerNode"]))
    # --- MLflow
    if mlflow["enabled"]:
        storage = mlflow["storage"]
        if storage == "azure-blob" and not mlflow["storageAccount"]:
            errors.append("mlflow.storageAccount: is required with mlflow.storage azure-blob")
        if storage != "azure-blob" and mlflow["storageAccount"]:
            errors.append("mlflow.storageAccount: only with mlflow.storage azure-blob")
        if storage == "s3" and not (mlflow["region"] or mlflow["endpoint"]):
            errors.append("mlflow.region: mlflow.storage s3 needs a region or an endpoint")
        if storage not in ("s3", None) and (mlflow["endpoint"] or mlflow["accessKeyId"] or mlflow["secretAccessKey"]):
            errors.append("mlflow.endpoint: endpoint and access keys belong to mlflow.storage s3 (minio is deployed by the role)")
        if storage == "s3" and bool(mlflow["accessKeyId"]) != bool(mlflow["secretAccessKey"]):
            errors.append("mlflow.secretAccessKey: give both mlflow.accessKeyId and mlflow.secretAccessKey, or neither (workload identity)")
        if mlflow["endpoint"] and not re.match(r"^https?://", mlflow["endpoint"]):
            errors.append("mlflow.endpoint: %r must be an http(s):// URL" % mlflow["endpoint"])
        db = mlflow["database"]
        if db["type"] == "external":
            for key in ("host", "user", "password"):
                if not db[key]:
                    errors.append("mlflow.database.%s: is required with mlflow.database.type external" % key)
        elif db["host"] or db["user"] or db["password"]:
            errors.append("mlflow.database.host: host, user and password belong to mlflow.database.type external")
        if db["type"] == "sqlite" and not allow_dummy_auth:
            errors.append("mlflow.database.type: sqlite is for throw-away environments only (where mlops_allow_dummy_auth is true); "
                          "use deployed or external")
        if not mlflow["auth"]["enabled"] and not allow_dummy_auth:
            errors.append("mlflow.auth.enabled: MLflow without authentication is for throw-away environments only")
    # --- model serving
    if serving["enabled"]:
        seen = {}
        for index, svc in enumerate(serving["services"]):
            if not isinstance(svc, Mapping):
                continue
            where = "modelServing.services[%d]" % index
            if svc["name"] is not None and (len(svc["name"]) > 63 or not re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", svc["name"])):
                errors.append("%s.name: %r is not a DNS-1035 label (starts with a letter)" % (where, svc["name"]))
            key = (svc["namespace"], svc["name"])
            if key in seen:
                errors.append("%s.name: %s/%s is already declared at modelServing.services[%d]" % (where, key[0], key[1], seen[key]))
            seen.setdefault(key, index)
            if bool(svc["storageUri"]) == bool(svc["modelUri"]):
                errors.append("%s.storageUri: set exactly one of storageUri or modelUri" % where)
            if svc["modelUri"] and not mlflow["enabled"]:
                errors.append("%s.modelUri: an MLflow registry reference needs mlflow.enabled" % where)
            if svc["modelUri"] and not re.match(r"^models:/[^/@]+(/[0-9]+|@[A-Za-z0-9_-]+)$", svc["modelUri"]):
                errors.append("%s.modelUri: %r is not models:/<name>/<version> or models:/<name>@<alias>" % (where, svc["modelUri"]))
            if svc["minReplicas"] == 0 and serving["mode"] != "Knative":
                errors.append("%s.minReplicas: 0 (scale to zero) needs modelServing.mode Knative" % where)
            if None not in (svc["minReplicas"], svc["maxReplicas"]) and svc["maxReplicas"] < svc["minReplicas"]:
                errors.append("%s.maxReplicas: must be >= minReplicas (got %d < %d)" % (where, svc["maxReplicas"], svc["minReplicas"]))
            if svc["gpu"]:
                if not gpu["enabled"]:
                    errors.append("%s.gpu: asks for GPUs but gpu.enabled is false" % where)
                elif gpu["gpusPerNode"] and svc["gpu"] > gpu["gpusPerNode"]:
                    errors.append("%s.gpu: %d GPUs do not fit on one node (gpu.gpusPerNode is %d)" % (where, svc["gpu"], gpu["gpusPerNode"]))
            if svc["namespace"] in _component_names(spec):
                errors.append("%s.namespace: %s is a component namespace; serve models in a team or serving namespace" % (where, svc["namespace"]))
    # --- monitoring
    if monitoring["enabled"] and not gpu["enabled"]:
        errors.append("monitoring.enabled: DCGM monitoring watches the GPU nodes and needs gpu.enabled")
    alerts = monitoring["alerts"]
    if None not in (alerts["temperatureWarningCelsius"], alerts["temperatureCriticalCelsius"]) \
            and alerts["temperatureCriticalCelsius"] <= alerts["temperatureWarningCelsius"]:
        errors.append("monitoring.alerts.temperatureCriticalCelsius: must be above temperatureWarningCelsius (got %d <= %d)"
                      % (alerts["temperatureCriticalCelsius"], alerts["temperatureWarningCelsius"]))
    # --- teams
    namespaces = {}
    components = _component_names(spec)
    for index, team in enumerate(spec["teams"]):
        if not isinstance(team, Mapping):
            continue
        where = "teams[%d]" % index
        ns = team["namespace"] or team["name"]
        if ns is None:
            continue
        if ns in namespaces:
            errors.append("%s.namespace: %s is already the namespace of teams[%d]" % (where, ns, namespaces[ns]))
        namespaces.setdefault(ns, index)
        if ns in components:
            errors.append("%s.namespace: %s is the namespace of a platform component" % (where, ns))
        quota = team["quota"]
        for low, high in (("requestsCpu", "limitsCpu"), ("requestsMemory", "limitsMemory")):
            if quota[low] is not None and quota[high] is not None and _qty(quota[low]) > _qty(quota[high]):
                errors.append("%s.quota.%s: must not exceed %s.quota.%s (got %s > %s)" % (where, low, where, high, quota[low], quota[high]))


def _component_names(spec):
    names = set()
    for section, key in (("gpu", "operatorNamespace"), ("jupyterhub", "namespace"), ("mlflow", "namespace"), ("modelServing", "namespace")):
        if spec[section]["enabled"] and spec[section][key]:
            names.add(spec[section][key])
    if spec["monitoring"]["enabled"] and spec["monitoring"]["installPrometheusStack"]:
        names.add(spec["monitoring"]["prometheusNamespace"])
    return names


def _flag(value):
    """A boolean flag that may arrive as text from an inventory (``"false"`` is false)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def _validate(spec, allow_dummy_auth=False):
    """``(normalised spec, [errors])``."""
    allow_dummy_auth = _flag(allow_dummy_auth)
    errors = []
    if not isinstance(spec, Mapping):
        return None, ["mlops_platform_spec: expected a mapping, got %s" % _type_name(spec)]
    normalised = _normalise(F("map", children=SCHEMA), spec, "", errors)
    if not errors:
        _cross_checks(normalised, allow_dummy_auth, errors)
    else:
        # Cross-field rules on partly invalid input would repeat or guess; report what is certain first,
        # except the rules that only read fields that passed.
        try:
            _cross_checks(normalised, allow_dummy_auth, errors)
        except (TypeError, KeyError, AttributeError, PlatformSpecError, GpuSpecError):
            pass
    unique = []
    for error in errors:
        if error not in unique:
            unique.append(error)
    return normalised, unique


def spec_errors(spec, allow_dummy_auth=False):
    """Every problem of ``spec`` as ``<path>: <problem>``; empty when it is valid."""
    return _validate(spec, allow_dummy_auth)[1]


# --------------------------------------------------------------------------- mapping


def mlflow_tracking_uri(spec):
    """The in-cluster address the mlflow role publishes (http://<release>.<namespace>.svc.cluster.local)."""
    return "http://mlflow.%s.svc.cluster.local" % spec["mlflow"]["namespace"]


def _team_namespaces(spec):
    return [team["namespace"] or team["name"] for team in spec["teams"]]


def _serving_namespaces(spec):
    if not spec["modelServing"]["enabled"]:
        return []
    out = []
    for svc in spec["modelServing"]["services"]:
        if svc["namespace"] not in out:
            out.append(svc["namespace"])
    return out


def _gpu_request(spec):
    """How a GPU workload of ``gpus`` devices asks for them on this pool: extra keys for profiles and services."""
    gpu = spec["gpu"]
    extra = {}
    if gpu["mig"]["strategy"] == "mixed":
        extra["mig_profile"] = gpu["mig"]["profile"]
    if gpu["spot"]["enabled"]:
        extra["spot"] = True
    return extra


def _gpu_note(spec, gpus):
    gpu = spec["gpu"]
    mig = gpu["mig"]
    if mig["strategy"] != "none":
        return "%d MIG %s device%s" % (gpus, mig["profile"], "" if gpus == 1 else "s")
    if gpu["sharing"]["strategy"] == "mps":
        return "%d NVIDIA GPU share%s (MPS)" % (gpus, "" if gpus == 1 else "s")
    return "%d NVIDIA GPU%s" % (gpus, "" if gpus == 1 else "s")


def _profiles(spec):
    hub = spec["jupyterhub"]
    res = hub["userResources"]
    images = hub["images"]
    gpu_on = spec["gpu"]["enabled"]
    entries = hub["profiles"]
    if entries is None:
        entries = [{"name": "CPU", "description": "", "image": None, "cpu": res["cpu"], "memory": res["memory"], "gpu": 0,
                    "default": True}]
        if gpu_on and res["gpu"]:
            entries.append({"name": "GPU", "description": "", "image": None, "cpu": res["cpu"], "memory": res["memory"],
                            "gpu": res["gpu"], "default": False})
    out = []
    for entry in entries:
        gpus = entry["gpu"] or 0
        profile = {
            "name": entry["name"],
            "description": entry["description"] or "%s%s cores, %s memory" % (
                (_gpu_note(spec, gpus) + ", ") if gpus else "", entry["cpu"], entry["memory"]),
            "image": entry["image"] or (images["gpu"] if gpus else images["cpu"]),
            "cpu": entry["cpu"],
            "memory": entry["memory"],
        }
        if gpus:
            profile["gpus"] = gpus
            profile.update(_gpu_request(spec))
        if entry["default"]:
            profile["default"] = True
        out.append(profile)
    return out


def _inference_services(spec):
    out = []
    for svc in spec["modelServing"]["services"]:
        entry = {"name": svc["name"], "namespace": svc["namespace"], "model_format": svc["modelFormat"],
                 "runtime_image": svc["runtimeImage"], "gpus": svc["gpu"],
                 "min_replicas": svc["minReplicas"], "max_replicas": svc["maxReplicas"]}
        for key, target in (("storageUri", "storage_uri"), ("modelUri", "model_uri"), ("protocolVersion", "protocol_version")):
            if svc[key]:
                entry[target] = svc[key]
        for key in ("cpu", "memory"):
            if svc[key] is not None:
                entry[key] = str(svc[key])
        if svc["gpu"]:
            entry.update(_gpu_request(spec))
        out.append(entry)
    return out


def _namespace_entries(spec):
    """platform_base_namespaces: component and serving namespaces, labelled as their owning roles label them."""
    api_egress = list(spec["network"]["apiServerCidrs"])
    out = []
    if spec["gpu"]["enabled"]:
        entry = dict(GPU_OPERATOR_NAMESPACE, name=spec["gpu"]["operatorNamespace"])
        if api_egress:
            entry["egress_cidrs"] = api_egress
        out.append(entry)
    if spec["jupyterhub"]["enabled"]:
        entry = {"name": spec["jupyterhub"]["namespace"], "pod_security": JUPYTERHUB_PSA, "justification": JUPYTERHUB_JUSTIFICATION,
                 "managed_by": "", "owner": "jupyterhub"}
        if api_egress:
            entry["egress_cidrs"] = api_egress
        out.append(entry)
    if spec["mlflow"]["enabled"]:
        out.append({"name": spec["mlflow"]["namespace"], "pod_security": "restricted", "managed_by": "", "owner": "mlflow"})
    if spec["modelServing"]["enabled"]:
        entry = {"name": spec["modelServing"]["namespace"], "pod_security": KSERVE_PSA, "pod_security_audit": KSERVE_PSA,
                 "pod_security_warn": KSERVE_PSA, "managed_by": "mlops.platform.kserve", "owner": "kserve"}
        if api_egress:
            entry["egress_cidrs"] = api_egress
        out.append(entry)
        teams = set(_team_namespaces(spec))
        level = spec["modelServing"]["servingPodSecurity"]
        for ns in _serving_namespaces(spec):
            if ns in teams:
                continue
            entry = {"name": ns, "pod_security": level, "managed_by": "", "owner": "kserve"}
            if level != "restricted":
                entry["justification"] = SERVING_JUSTIFICATION
            out.append(entry)
    if spec["monitoring"]["enabled"] and spec["monitoring"]["installPrometheusStack"]:
        entry = {"name": spec["monitoring"]["prometheusNamespace"], "pod_security": "privileged",
                 "justification": PROMETHEUS_JUSTIFICATION, "managed_by": "mlops.platform.dcgm_monitoring",
                 "owner": "dcgm_monitoring"}
        if api_egress:
            entry["egress_cidrs"] = api_egress
        out.append(entry)
    return out


def _teams(spec):
    serving = set(_serving_namespaces(spec))
    level = spec["modelServing"]["servingPodSecurity"]
    out = []
    for team in spec["teams"]:
        quota = team["quota"]
        ns = team["namespace"] or team["name"]
        entry = {
            "name": team["name"], "namespace": ns, "users": list(team["users"]), "groups": list(team["groups"]),
            "quota": {"gpus": quota["gpus"], "requests_cpu": quota["requestsCpu"], "limits_cpu": quota["limitsCpu"],
                      "requests_memory": quota["requestsMemory"], "limits_memory": quota["limitsMemory"], "pvcs": quota["pvcs"]},
            "egress_cidrs": list(team["egressCidrs"]),
        }
        if quota["requestsStorage"] is not None:
            entry["quota"]["requests_storage"] = quota["requestsStorage"]
        if ns in serving and level != "restricted":
            # The kserve role labels the namespaces it serves in with its serving level; the team's must agree.
            entry["pod_security"] = level
            entry["justification"] = SERVING_JUSTIFICATION
        out.append(entry)
    return out


def _allows(spec):
    out = []
    hub = spec["jupyterhub"]["namespace"] if spec["jupyterhub"]["enabled"] else None
    mlflow = spec["mlflow"]["namespace"] if spec["mlflow"]["enabled"] else None
    notebooks = {"component": "singleuser-server"}
    if hub:
        out.append({"name": "hub-to-notebooks", "to_namespace": hub, "to_pod_selector": notebooks,
                    "from": [{"namespace": hub, "pod_selector": {"component": "hub"}},
                             {"namespace": hub, "pod_selector": {"component": "proxy"}}],
                    "ports": [NOTEBOOK_PORT]})
        out.append({"name": "notebooks-to-hub", "to_namespace": hub, "to_pod_selector": {"component": "hub"},
                    "from": [{"namespace": hub, "pod_selector": notebooks}], "ports": [HUB_API_PORT]})
    if mlflow:
        sources = []
        if hub:
            sources.append({"namespace": hub, "pod_selector": notebooks})
        sources += [{"namespace": ns} for ns in _team_namespaces(spec)]
        sources += [{"namespace": ns} for ns in _serving_namespaces(spec) if ns not in _team_namespaces(spec)]
        if sources:
            out.append({"name": "mlflow-clients", "to_namespace": mlflow,
                        "to_pod_selector": {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "mlflow"},
                        "from": sources, "ports": [MLFLOW_SERVER_PORT]})
    monitoring = spec["monitoring"]
    if monitoring["enabled"] and spec["gpu"]["enabled"]:
        prom = monitoring["prometheusNamespace"]
        out.append({"name": "prometheus-scrape-dcgm", "to_namespace": spec["gpu"]["operatorNamespace"],
                    "to_pod_selector": {"app": "nvidia-dcgm-exporter"},
                    "from": [{"namespace": prom, "egress": bool(monitoring["installPrometheusStack"])}],
                    "ports": [DCGM_EXPORTER_PORT]})
    if spec["modelServing"]["enabled"] and spec["network"]["apiServerCidrs"]:
        out.append({"name": "apiserver-to-kserve-webhook", "to_namespace": spec["modelServing"]["namespace"],
                    "from": [{"cidr": cidr} for cidr in spec["network"]["apiServerCidrs"]], "ports": [KSERVE_WEBHOOK_PORT]})
    return out


def _gpu_nodepool(spec):
    gpu = spec["gpu"]
    existing = gpu["provider"] == "existing"
    return {
        "gpu_nodepool_provider": gpu["provider"],
        "gpu_nodepool_node_selector": gpu["nodeSelector"] if existing else "",
        "gpu_nodepool_node_names": list(gpu["nodeNames"]) if existing else [],
        "gpu_nodepool_gpus_per_node": gpu["gpusPerNode"],
        "gpu_nodepool_aks": {
            "resource_group": gpu["resourceGroup"], "cluster_name": gpu["clusterName"], "name": gpu["poolName"],
            "vm_size": gpu["nodePoolSize"], "count": gpu["nodeCount"],
            "autoscale": {"enabled": gpu["autoscaling"], "min_count": gpu["minNodes"], "max_count": gpu["maxNodes"]},
            "spot": {"enabled": gpu["spot"]["enabled"], "eviction_policy": gpu["spot"]["evictionPolicy"],
                     "max_price": float(gpu["spot"]["maxPrice"])},
            "gpu_instance_profile": gpu["mig"]["gpuInstanceProfile"],
            "availability_zones": list(gpu["availabilityZones"]),
            "os_disk_size_gb": gpu["osDiskSizeGB"],
        },
    }


def _min_gpu_nodes(spec):
    gpu = spec["gpu"]
    if not gpu["enabled"]:
        return 0
    if gpu["provider"] == "aks" and gpu["autoscaling"]:
        return gpu["minNodes"]
    if gpu["provider"] == "existing" and gpu["nodeNames"]:
        return len(gpu["nodeNames"])
    return gpu["nodeCount"]


def _gpu_operator(spec):
    gpu = spec["gpu"]
    mig = gpu["mig"]
    mig_on = mig["strategy"] != "none"
    return {
        "gpu_operator_namespace": gpu["operatorNamespace"],
        "gpu_operator_sharing": {"strategy": gpu["sharing"]["strategy"], "replicas": gpu["sharing"]["replicas"],
                                 "rename": False, "fail_requests_greater_than_one": False},
        "gpu_operator_mig_strategy": mig["strategy"],
        "gpu_operator_mig_config_default": (mig["config"] or "all-" + mig["profile"]) if mig_on else "all-disabled",
        "gpu_operator_spot_tolerations": gpu["spot"]["enabled"],
        "gpu_operator_gpu_node_selectors": list(DEFAULT_LABEL_SELECTORS),
        "gpu_operator_min_gpu_nodes": _min_gpu_nodes(spec),
        "gpu_operator_dcgm_exporter_enabled": spec["monitoring"]["enabled"],
    }


def _dcgm_monitoring(spec):
    mon = spec["monitoring"]
    alerts = mon["alerts"]
    ns = spec["gpu"]["operatorNamespace"]
    return {
        "dcgm_monitoring_exporter_source": "gpu-operator",
        "dcgm_monitoring_namespace": ns,
        "dcgm_monitoring_dashboard_namespace": ns,
        "dcgm_monitoring_install_prometheus_stack": mon["installPrometheusStack"],
        "dcgm_monitoring_prometheus_stack_namespace": mon["prometheusNamespace"],
        "dcgm_monitoring_prometheus_selector_labels": dict(mon["prometheusSelectorLabels"]),
        "dcgm_monitoring_scrape_interval": mon["scrapeInterval"],
        "dcgm_monitoring_alerts_enabled": alerts["enabled"],
        "dcgm_monitoring_temperature_warning_celsius": alerts["temperatureWarningCelsius"],
        "dcgm_monitoring_temperature_critical_celsius": alerts["temperatureCriticalCelsius"],
        "dcgm_monitoring_memory_used_percent": alerts["memoryUsedPercent"],
        "dcgm_monitoring_idle_utilization_percent": alerts["idleUtilizationPercent"],
        "dcgm_monitoring_idle_minutes": alerts["idleMinutes"],
    }


def _mlflow(spec):
    mlflow = spec["mlflow"]
    db = mlflow["database"]
    auth = mlflow["auth"]
    return {
        "mlflow_namespace": mlflow["namespace"],
        "mlflow_artifacts_mode": STORAGE_MODES[mlflow["storage"]],
        "mlflow_artifacts_bucket": mlflow["bucket"],
        "mlflow_artifacts_storage_size": mlflow["storageSize"],
        "mlflow_minio_storage_size": mlflow["storageSize"],
        "mlflow_s3": {"endpoint_url": mlflow["endpoint"], "region": mlflow["region"],
                      "access_key_id": mlflow["accessKeyId"], "secret_access_key": mlflow["secretAccessKey"]},
        "mlflow_azure_blob": {"storage_account": mlflow["storageAccount"], "container": mlflow["container"],
                              "connection_string": mlflow["connectionString"], "create": False, "resource_group": "", "location": ""},
        "mlflow_database_mode": db["type"],
        "mlflow_postgres_external": {"host": db["host"], "port": db["port"], "user": db["user"], "password": db["password"],
                                     "sslmode": db["sslmode"]},
        "mlflow_postgres_storage_size": db["storageSize"],
        "mlflow_auth_enabled": auth["enabled"],
        "mlflow_auth_admin_username": auth["adminUsername"],
        "mlflow_auth_admin_password": auth["adminPassword"],
        "mlflow_auth_default_permission": auth["defaultPermission"],
        "mlflow_publish_namespaces": _team_namespaces(spec),
    }


def _jupyterhub(spec):
    hub = spec["jupyterhub"]
    auth = hub["auth"]
    team_users = [u for team in spec["teams"] for u in team["users"]]
    team_groups = [g for team in spec["teams"] for g in team["groups"]]
    sharing = spec["gpu"]["sharing"]["strategy"]
    spot = spec["gpu"]["enabled"] and spec["gpu"]["spot"]["enabled"]
    kind = auth["type"]
    return {
        "jupyterhub_namespace": hub["namespace"],
        "jupyterhub_pod_security_level": JUPYTERHUB_PSA,
        "jupyterhub_auth_type": kind,
        "jupyterhub_public_url": hub["publicUrl"],
        "jupyterhub_admin_users": list(auth["adminUsers"]),
        "jupyterhub_admin_groups": list(auth["adminGroups"]),
        "jupyterhub_allowed_users": _unique(list(auth["allowedUsers"]) + team_users),
        "jupyterhub_allowed_groups": _unique(list(auth["allowedGroups"]) + team_groups),
        "jupyterhub_allow_all": auth["allowAll"],
        "jupyterhub_oidc": {
            "client_id": auth["clientId"] if kind == "oidc" else "", "client_secret": auth["clientSecret"] if kind == "oidc" else "",
            "authorize_url": auth["authorizeUrl"], "token_url": auth["tokenUrl"], "userdata_url": auth["userdataUrl"],
            "scope": list(auth["scope"]), "username_claim": auth["usernameClaim"], "groups_claim": auth["groupsClaim"],
            "login_service": auth["loginService"],
        },
        "jupyterhub_azuread": {
            "tenant_id": auth["tenantId"], "client_id": auth["clientId"] if kind == "azuread" else "",
            "client_secret": auth["clientSecret"] if kind == "azuread" else "",
            "username_claim": auth["usernameClaim"], "groups_claim": auth["groupsClaim"],
        },
        "jupyterhub_github": {"client_id": auth["clientId"] if kind == "github" else "",
                              "client_secret": auth["clientSecret"] if kind == "github" else ""},
        "jupyterhub_dummy_password": auth["dummyPassword"] if kind == "dummy" else "",
        "jupyterhub_profiles": _profiles(spec),
        # MPS shares are described in the profile text; the role's time-slicing note would be wrong for them.
        "jupyterhub_gpu_time_slicing": spec["gpu"]["enabled"] and sharing == "time-slicing",
        "jupyterhub_image_puller_spot": bool(spot),
        "jupyterhub_user_storage": {"capacity": hub["storage"]["capacity"], "storage_class": hub["storage"]["storageClass"],
                                    "access_modes": ["ReadWriteOnce"], "home_mount_path": "/home/jovyan"},
        "jupyterhub_cull": {"enabled": hub["culling"]["enabled"], "timeout": hub["culling"]["timeout"],
                            "every": hub["culling"]["every"], "max_age": 0, "users": False},
        "jupyterhub_mlflow_tracking_uri": mlflow_tracking_uri(spec) if spec["mlflow"]["enabled"] else "",
    }


def _kserve(spec):
    serving = spec["modelServing"]
    return {
        "kserve_namespace": serving["namespace"],
        "kserve_namespace_psa": KSERVE_PSA,
        "kserve_deployment_mode": serving["mode"],
        "kserve_serving_namespace_psa": serving["servingPodSecurity"],
        "kserve_inference_services": _inference_services(spec),
        "kserve_mlflow_tracking_uri": mlflow_tracking_uri(spec) if spec["mlflow"]["enabled"] else "",
    }


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def role_vars(spec, allow_dummy_auth=False):
    """Every role's variables that ``spec`` decides; raises PlatformSpecError listing every problem."""
    normalised, errors = _validate(spec, allow_dummy_auth)
    if errors:
        raise PlatformSpecError("mlops_platform_spec has %d problem%s:\n- %s"
                                % (len(errors), "" if len(errors) == 1 else "s", "\n- ".join(errors)))
    spec = normalised
    gpu = spec["gpu"]
    return {
        "components": {
            "platform_base": True,
            "gpu_nodepool": gpu["enabled"],
            "gpu_operator": gpu["enabled"],
            "dcgm_monitoring": spec["monitoring"]["enabled"],
            "mlflow": spec["mlflow"]["enabled"],
            "jupyterhub": spec["jupyterhub"]["enabled"],
            "kserve": spec["modelServing"]["enabled"],
        },
        "platform_base": {
            "platform_base_namespaces": _namespace_entries(spec),
            "platform_base_teams": _teams(spec),
            "platform_base_allows": _allows(spec),
            "platform_base_default_deny": spec["network"]["defaultDeny"],
        },
        "gpu_nodepool": _gpu_nodepool(spec),
        "gpu_operator": _gpu_operator(spec),
        "dcgm_monitoring": _dcgm_monitoring(spec),
        "mlflow": _mlflow(spec),
        "jupyterhub": _jupyterhub(spec),
        "kserve": _kserve(spec),
        "readiness": {
            "label_selectors": list(DEFAULT_LABEL_SELECTORS),
            "min_nodes": _min_gpu_nodes(spec),
            "gpus_per_node": gpu["gpusPerNode"] if gpu["enabled"] else 0,
        },
        "mlops": {"mlops_gpu_driver_owner": gpu["driverOwner"]},
    }
