#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: helm_release_recover
short_description: Recover a Helm 3 release that an interrupted run left pending
version_added: 0.1.0
author:
  - mlops.platform maintainers (!UNKNOWN)
description:
  - Helm 3 keeps each revision of a release in a Secret C(sh.helm.release.v1.<release>.v<N>) in the release
    namespace. When a run is killed during C(helm install), C(helm upgrade) or C(helm rollback), the newest revision
    stays C(pending-install), C(pending-upgrade) or C(pending-rollback), and Helm refuses every later install or
    upgrade with C(another operation (install/upgrade/rollback) is in progress).
  - An uninstall that stopped midway leaves the newest revision C(uninstalling). That is also what happens when
    C(--atomic) rolls back a failed first install and the API fails the rollback too. C(helm upgrade --install)
    then fails with C(has no deployed releases). Run this module before an install or upgrade (not before an
    uninstall); it treats C(uninstalling) like a pending status.
  - This module reads the revision records of O(release_name) (label selector C(owner=helm,name=<release>)). When
    the newest is pending or C(uninstalling) and began at least O(stale_after) seconds ago, it deletes that record
    (and any such record right below it), nothing else.
  - After a C(pending-upgrade) or C(pending-rollback) Helm sees the last settled revision again and the next
    upgrade proceeds from it. After a C(pending-install) or C(uninstalling) with no earlier revision the next install starts afresh
    and adopts the objects the interrupted run created, because Helm labelled and annotated them for the release
    (C(meta.helm.sh/release-name), C(meta.helm.sh/release-namespace)); Helm 3.2 or later does that.
  - PersistentVolumeClaims and every other object of the release are never touched.
  - A pending revision younger than O(stale_after) may belong to a run that is still going on; the module then
    fails and says so, without changing anything.
  - Only C(info.status), C(info.last_deployed) and C(version) of a decoded release are read; the release's
    values (which hold secrets) are neither kept nor returned.
options:
  release_name:
    description:
      - Name of the Helm release.
    type: str
    required: true
    aliases: [name]
  release_namespace:
    description:
      - Namespace of the Helm release (where Helm keeps its revision records).
    type: str
    required: true
    aliases: [namespace]
  stale_after:
    description:
      - Seconds after which a pending revision is taken as left behind by an interrupted run. Its age is counted
        from the later of the record's C(creationTimestamp) and the release's C(info.last_deployed), against the
        clock of the host that runs the module (keep the clocks in step).
      - The default V(0) treats every pending revision as left by an interrupted run. That is right when runs
        against a release are serialised (one operator, or one AWX job template that does not allow concurrent
        jobs), which is how this collection's roles are meant to be run.
      - Where two runs may overlap, set it to at least the Helm C(timeout) of those runs, so that a run that is
        still waiting for its release is never interfered with.
    type: int
    default: 0
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - mlops.platform.attributes
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is deleted; the module reports what it would remove and returns C(changed=true).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows the release's revision list (numbers and statuses only) before and after.
requirements:
  - kubernetes >= 24.2.0
notes:
  - Needs C(list) and C(delete) on Secrets in O(release_namespace).
  - Helm hooks of the interrupted run that Helm would not delete before creating them again (no
    C(before-hook-creation) delete policy) are not removed by this module.
  - When the values of the next run are those of the revision Helm continues from, M(kubernetes.core.helm) finds
    nothing to change and the objects the interrupted upgrade applied stay as it left them until the next change.
seealso:
  - module: kubernetes.core.helm
"""

EXAMPLES = r"""
- name: Recover the JupyterHub release if an earlier run was interrupted
  mlops.platform.helm_release_recover:
    release_name: jupyterhub
    release_namespace: jupyterhub
  register: recovery

- name: Say what was recovered
  ansible.builtin.debug:
    msg: "{{ recovery.msg }}"
  when: recovery is changed

- name: Install or upgrade the release
  kubernetes.core.helm:
    name: jupyterhub
    namespace: jupyterhub
    chart_ref: jupyterhub/jupyterhub
    chart_version: 4.4.0
    atomic: true
    wait: true
    timeout: 15m0s

- name: Where runs may overlap, only touch revisions older than the longest Helm timeout
  mlops.platform.helm_release_recover:
    release_name: mlflow
    release_namespace: mlflow
    stale_after: 1200
"""

RETURN = r"""
recovered:
  description: Whether a pending revision was removed (always false in check mode).
  returned: always
  type: bool
  sample: true
refused:
  description: Whether a pending revision was left alone because it is younger than O(stale_after).
  returned: always
  type: bool
  sample: false
previous_status:
  description: Status of the newest revision found, null when the release has no revision.
  returned: always
  type: str
  sample: pending-upgrade
revision:
  description: Number of the newest revision found, null when the release has no revision.
  returned: always
  type: int
  sample: 3
removed:
  description: The revision records removed (in check mode, those that would be removed).
  returned: always
  type: list
  elements: dict
  sample: [{"revision": 3, "status": "pending-upgrade", "secret": "sh.helm.release.v1.jupyterhub.v3"}]
deployed:
  description:
    - Whether a C(deployed) revision is left once the records in RV(removed) are gone, that is, whether the next
      Helm run upgrades a working release. The roles install with C(atomic=false) when it is false, so that a first
      install that fails part-way is continued by the next attempt instead of rolled back through a failing API.
  returned: always
  type: bool
  sample: true
revisions:
  description: Every revision record found, newest first (number, status and Secret name only).
  returned: always
  type: list
  elements: dict
  sample: [{"revision": 3, "status": "pending-upgrade", "secret": "sh.helm.release.v1.jupyterhub.v3"},
           {"revision": 2, "status": "deployed", "secret": "sh.helm.release.v1.jupyterhub.v2"}]
msg:
  description: What was found and what was done.
  returned: always
  type: str
  sample: >-
    release jupyterhub/jupyterhub was left pending-upgrade at revision 3 by an interrupted run; removed that
    revision's record, Helm continues from revision 2 (deployed)
"""

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.mlops.platform.plugins.module_utils.helm_release import run_recover, validate_params
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import api_transport_from_module, run_on_api


def argument_spec():
    spec = dict(
        release_name=dict(type="str", required=True, aliases=["name"]),
        release_namespace=dict(type="str", required=True, aliases=["namespace"]),
        stale_after=dict(type="int", default=0),
    )
    spec.update(AUTH_ARG_SPEC)
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    result = run_on_api(module, params, validate_params, api_transport_from_module,
                        lambda transport: run_recover(transport, params, check_mode=module.check_mode),
                        "Kubernetes API error while recovering the Helm release: %s")
    if not module._diff:
        result.pop("diff", None)
    if result["refused"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
