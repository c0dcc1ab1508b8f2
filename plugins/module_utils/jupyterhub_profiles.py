# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zero-to-jupyterhub ``singleuser.profileList`` rendering (the ``mlops.platform.jupyterhub_profiles`` filter).

GPU profiles get their resource limit, tolerations, node selector and product affinity from the pod-spec
building blocks in gpu_pod_spec, so a JupyterHub GPU server lands where any other GPU pod would.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import (
    gpu_resource_name,
    gpu_tolerations,
    product_expression,
    validate_products,
)
from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import DEFAULT_NODE_SELECTOR, SPOT_TOLERATION
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import (
    GpuSpecError,
    cpu_quantity,
    int_arg,
    memory_quantity,
    parse_quantity,
    require_bool,
    require_list,
    require_mapping,
    require_string,
)

# KubeSpawner's byte specification: K/M/G/T are powers of 1024 (the same as Ki/Mi/Gi/Ti).
_KUBESPAWNER_SUFFIXES = (("T", 2 ** 40), ("G", 2 ** 30), ("M", 2 ** 20), ("K", 2 ** 10))
PROFILE_KEYS = ("name", "description", "image", "gpus", "cpu", "memory", "cpu_guarantee", "memory_guarantee",
                "mig_profile", "default", "spot", "gpu_products")


def kubespawner_bytes(value, name):
    """Convert a Kubernetes memory quantity to KubeSpawner's byte specification.

    KubeSpawner's ``mem_limit``/``mem_guarantee`` take an integer number of bytes or a number with a
    K, M, G or T suffix, where those suffixes are powers of 1024. ``8Gi`` therefore becomes ``8G``.
    Decimal suffixes (``8G`` in Kubernetes means 8*10^9 bytes) are rejected as ambiguous.
    """
    if isinstance(value, str) and re.match(r"^[0-9.]+[kKMGTPE]$", value):
        raise GpuSpecError("%s: %r is ambiguous (Kubernetes reads %s as powers of 1000, KubeSpawner as powers of 1024); "
                           "write it with a binary suffix such as '%si'" % (name, value, value[-1], value.upper()))
    _text, amount = memory_quantity(value, name)
    if amount != amount.to_integral_value():
        raise GpuSpecError("%s: %r is not a whole number of bytes" % (name, value))
    amount = int(amount)
    for suffix, factor in _KUBESPAWNER_SUFFIXES:
        if amount % factor == 0:
            return "%d%s" % (amount // factor, suffix)
    return str(amount)


def _profile_slug(name):
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "profile"


def render_jupyterhub_profiles(profiles):
    """Build zero-to-jupyterhub ``singleuser.profileList`` entries from simple profile mappings."""
    require_list(profiles, "profiles")
    result = []
    names = {}
    slugs = {}
    default_at = None
    for index, profile in enumerate(profiles):
        where = "profiles[%d]" % index
        require_mapping(profile, where)
        unknown = sorted(str(k) for k in set(profile) - set(PROFILE_KEYS))
        if unknown:
            raise GpuSpecError("%s: unknown keys %s; allowed keys are %s" % (where, ", ".join(unknown), ", ".join(PROFILE_KEYS)))
        if "name" not in profile:
            raise GpuSpecError("%s: missing required key 'name'" % where)
        name = require_string(profile["name"], "%s.name" % where)
        where = "profiles[%d] (%r)" % (index, name)
        if name in names:
            raise GpuSpecError("%s.name: duplicate profile name, already used by profiles[%d]" % (where, names[name]))
        names[name] = index
        slug = _profile_slug(name)
        if slug in slugs:
            raise GpuSpecError("%s.name: slug %r clashes with profiles[%d]; choose names that differ in letters or digits" % (where, slug, slugs[slug]))
        slugs[slug] = index
        if "image" not in profile:
            raise GpuSpecError("%s: missing required key 'image'" % where)
        image = require_string(profile["image"], "%s.image" % where)
        if any(c.isspace() for c in image):
            raise GpuSpecError("%s.image: %r contains whitespace" % (where, image))
        description = require_string(profile.get("description", ""), "%s.description" % where, allow_empty=True)
        gpus = int_arg(profile.get("gpus", 0), "%s.gpus" % where)
        default = require_bool(profile.get("default", False), "%s.default" % where)
        if default:
            if default_at is not None:
                raise GpuSpecError("%s.default: only one profile may be the default, profiles[%d] already is" % (where, default_at))
            default_at = index
        spot = require_bool(profile.get("spot", False), "%s.spot" % where)
        mig_profile = profile.get("mig_profile")
        try:
            resource = gpu_resource_name(mig_profile)
            products = validate_products(profile.get("gpu_products") or [], "gpu_products")
        except GpuSpecError as exc:
            raise GpuSpecError("%s.%s" % (where, exc))
        if gpus == 0 and (mig_profile is not None or products):
            raise GpuSpecError("%s: mig_profile and gpu_products need gpus >= 1 (this profile is CPU-only)" % where)

        override = {"image": image}
        if "cpu" in profile:
            override["cpu_limit"] = float(cpu_quantity(profile["cpu"], "%s.cpu" % where)[1])
        if "cpu_guarantee" in profile:
            override["cpu_guarantee"] = float(cpu_quantity(profile["cpu_guarantee"], "%s.cpu_guarantee" % where)[1])
        if "memory" in profile:
            override["mem_limit"] = kubespawner_bytes(profile["memory"], "%s.memory" % where)
        if "memory_guarantee" in profile:
            override["mem_guarantee"] = kubespawner_bytes(profile["memory_guarantee"], "%s.memory_guarantee" % where)
        if override.get("cpu_guarantee", 0) > override.get("cpu_limit", float("inf")):
            raise GpuSpecError("%s.cpu_guarantee: exceeds cpu (%s > %s)" % (where, override["cpu_guarantee"], override["cpu_limit"]))
        if "mem_guarantee" in override and "mem_limit" in override and \
                parse_quantity(profile["memory_guarantee"], "memory_guarantee") > parse_quantity(profile["memory"], "memory"):
            raise GpuSpecError("%s.memory_guarantee: exceeds memory (%s > %s)" % (where, profile["memory_guarantee"], profile["memory"]))
        if gpus:
            override["extra_resource_limits"] = {resource: str(gpus)}
            override["tolerations"] = gpu_tolerations(spot)
            override["node_selector"] = dict(DEFAULT_NODE_SELECTOR)
            if products:
                override["node_affinity_required"] = [{"matchExpressions": [product_expression(products)]}]
        elif spot:
            override["tolerations"] = [dict(SPOT_TOLERATION)]

        entry = {"display_name": name, "slug": slug, "description": description, "kubespawner_override": override}
        if default:
            entry["default"] = True
        result.append(entry)
    return result
