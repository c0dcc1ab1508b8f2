# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Common ``attributes`` blocks for mlops.platform modules."""

    DOCUMENTATION = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/mlops.platform.gpu) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - mlops.platform.gpu
"""

    # Read-only modules: nothing to change, so check mode behaves exactly like a normal run.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads from the API, so check mode runs the same checks.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: Nothing is changed, so there is nothing to diff.
"""

    # Modules that create and delete short-lived objects.
    EPHEMERAL = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is created; the module reports what it would run and returns C(changed=true).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: The objects created are temporary and removed again, so there is no meaningful diff.
"""
