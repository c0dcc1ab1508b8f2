# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pin
short_description: The chart versions this collection pins, from one place
version_added: 0.2.0
description:
  - Returns the pinned upstream chart release a role installs by default, or one field of it.
  - The pins live in one file of the collection (C(plugins/module_utils/pins.py)); role defaults such as
    C(gpu_operator_chart_version) read them through this lookup, so every default moves with one edit.
  - Override the role variables, not this lookup, to install another version or a mirrored chart.
author:
  - mlops.platform maintainers (@mlops-platform)
options:
  _terms:
    description:
      - Pin names such as C(gpu_operator), or C(name.field) with field C(chart), C(repo), C(version) or
        C(app_version).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Show the pinned GPU operator release
  ansible.builtin.debug:
    msg: "{{ lookup('mlops.platform.pin', 'gpu_operator.version') }}"

- name: The whole pin (chart, repo, version)
  ansible.builtin.debug:
    msg: "{{ lookup('mlops.platform.pin', 'jupyterhub') }}"
"""

RETURN = r"""
_raw:
  description: One entry per term, a string for C(name.field) or a dictionary for a bare name.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.mlops.platform.plugins.module_utils.pins import PinError, pin


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [pin(str(term)) for term in terms]
        except PinError as exc:
            raise AnsibleLookupError("mlops.platform.pin: %s" % exc.args[0])
