# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platform base filters. Documentation lives in the sidecar ``<filter name>.yml`` files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.module_utils.platform_base import PlatformSpecError, render_platform_base


def platform_base_manifests(namespaces, teams=None, allows=None, priority_classes=None, default_deny=True):
    """Namespaces (PSA), NetworkPolicies, team quotas/limits/RBAC and PriorityClasses as manifests."""
    try:
        return render_platform_base(namespaces=namespaces, teams=teams, allows=allows,
                                    priority_classes=priority_classes, default_deny_enabled=default_deny)
    except PlatformSpecError as exc:
        raise AnsibleFilterError("mlops.platform.platform_base_manifests: %s" % exc)


class FilterModule(object):
    """Platform base filters."""

    def filters(self):
        return {"platform_base_manifests": platform_base_manifests}
