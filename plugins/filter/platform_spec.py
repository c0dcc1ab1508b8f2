# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platform spec filters. Documentation lives in the sidecar ``<filter name>.yml`` files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.module_utils.platform_base import PlatformSpecError
from ansible_collections.mlops.platform.plugins.module_utils.platform_spec import role_vars, spec_errors


def platform_role_vars(spec, allow_dummy_auth=False):
    """Every role's variables that the platform spec decides."""
    try:
        return role_vars(spec, allow_dummy_auth=allow_dummy_auth)
    except PlatformSpecError as exc:
        raise AnsibleFilterError("mlops.platform.platform_role_vars: %s" % exc)


def platform_spec_errors(spec, allow_dummy_auth=False):
    """Every problem of the platform spec as '<path>: <problem>'; empty when it is valid."""
    return spec_errors(spec, allow_dummy_auth=allow_dummy_auth)


class FilterModule(object):
    """Platform spec filters."""

    def filters(self):
        return {"platform_role_vars": platform_role_vars, "platform_spec_errors": platform_spec_errors}
