# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the platform's default chart versions are pinned.

Every role's ``<role>_chart_ref`` / ``<role>_chart_version`` / ``<role>_chart_repo`` default comes
from here through the ``mlops.platform.pin`` lookup, so a version bump is one edit in this file (see
docs/upstream.md for the procedure: refresh the upstream data, bump here, run ``make test``).
Each entry names the published chart, its upstream repository, the release, and the app version
the release ships where the roles depend on it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CHARTS = {
    "gpu_operator": {
        "chart": "gpu-operator",
        "repo": "https://helm.ngc.nvidia.com/nvidia",
        "version": "v26.7.0",
    },
    "dcgm_exporter": {
        "chart": "dcgm-exporter",
        "repo": "https://nvidia.github.io/dcgm-exporter/helm-charts",
        "version": "4.8.2",
        "app_version": "4.5.3-4.8.2",
    },
    "kube_prometheus_stack": {
        # Installed by dcgm_monitoring only on request, when the cluster has no Prometheus Operator.
        "chart": "kube-prometheus-stack",
        "repo": "https://prometheus-community.github.io/helm-charts",
        "version": "77.6.2",
    },
    "jupyterhub": {
        "chart": "jupyterhub",
        "repo": "https://hub.jupyter.org/helm-chart/",
        "version": "4.4.0",
        "app_version": "5.5.0",
    },
    "mlflow": {
        "chart": "mlflow",
        "repo": "https://community-charts.github.io/helm-charts",
        "version": "1.11.5",
        "app_version": "3.15.1",
    },
    "kserve_crd": {
        "chart": "kserve-crd",
        "repo": "oci://ghcr.io/kserve/charts",
        "version": "v0.20.0",
    },
    "kserve_resources": {
        "chart": "kserve-resources",
        "repo": "oci://ghcr.io/kserve/charts",
        "version": "v0.20.0",
    },
}


class PinError(KeyError):
    """An unknown pin name or field."""


def pin(name):
    """The pin named ``name`` (``gpu_operator``) or one field of it (``gpu_operator.version``)."""
    key, _sep, field = name.partition(".")
    if key not in CHARTS:
        raise PinError("unknown chart pin %r; known: %s" % (key, ", ".join(sorted(CHARTS))))
    entry = CHARTS[key]
    if not field:
        return dict(entry)
    if field not in entry:
        raise PinError("chart pin %r has no field %r; fields: %s" % (key, field, ", ".join(sorted(entry))))
    return entry[field]
