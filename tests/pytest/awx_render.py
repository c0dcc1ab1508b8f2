# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What playbooks/awx_configure.yml would create, rendered by the playbook itself without a controller.

``ansible-playbook playbooks/awx_configure.yml --tags awx_render`` runs only the render tasks and prints
the job templates (surveys expanded) and workflows as JSON; ``render()`` returns that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(ROOT, "playbooks", "awx_configure.yml")


def ansible_env():
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    for name in ("CONTROLLER_HOST", "CONTROLLER_OAUTH_TOKEN", "CONTROLLER_USERNAME", "CONTROLLER_PASSWORD"):
        env.pop(name, None)
    return env


def playbook_cmd(*args):
    return [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK] + list(args)


def render(extra=None):
    args = ["--tags", "awx_render", "-e", json.dumps(extra or {})]
    proc = subprocess.run(playbook_cmd(*args), capture_output=True, text=True, env=ansible_env(), cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r'^\s*"msg": (".*")\s*$', proc.stdout, re.MULTILINE)
    assert match, proc.stdout
    return json.loads(json.loads(match.group(1)))
