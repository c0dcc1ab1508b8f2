# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A separate virtualenv with the Azure SDK that azure.azcollection's modules import.

The shared toolchain does not carry the Azure SDK (dozens of management packages), so the tests that run
azure.azcollection modules build it themselves, once, under ``~/.cache/mlops-platform/azure-sdk-venv``
(``MLOPS_AZURE_SDK_VENV`` overrides the place). The Ansible tasks run with ``ansible_python_interpreter`` set to
that venv's python; ansible-playbook itself stays in the shared venv.

Which packages: those that ``azure_rm_common`` imports in its one ``try`` block (a missing one disables every
module), plus ``azure-cli-core`` (cloud environments) and the request libraries. Their versions are the pins of
the installed collection's own ``requirements.txt``, read at build time, so the environment follows the
collection. A marker file records the pin set; a venv whose marker or imports do not match is rebuilt.

Run as a script (``python tests/pytest/azure_sdk_env.py``) it builds or checks the venv and prints its python.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

DEFAULT_VENV = os.path.expanduser("~/.cache/mlops-platform/azure-sdk-venv")
MARKER = "mlops-azure-sdk.json"

# Distribution names azure_rm_common (and the REST modules) need; versions come from the collection's pins.
NEEDED = [
    "azure-cli-core", "azure-common", "azure-core", "azure-identity", "azure-mgmt-core",
    "azure-mgmt-network", "azure-mgmt-resource", "azure-mgmt-managementgroups", "azure-mgmt-storage",
    "azure-mgmt-compute", "azure-mgmt-dns", "azure-mgmt-privatedns", "azure-mgmt-monitor", "azure-mgmt-web",
    "azure-mgmt-containerservice", "azure-mgmt-marketplaceordering", "azure-mgmt-trafficmanager",
    "azure-storage-blob", "azure-storage-file-share", "azure-mgmt-authorization", "azure-mgmt-sql",
    "azure-mgmt-servicebus", "azure-mgmt-rdbms", "azure-mgmt-postgresqlflexibleservers",
    "azure-mgmt-mysqlflexibleservers", "azure-mgmt-containerregistry", "azure-mgmt-containerinstance",
    "azure-mgmt-loganalytics", "azure-mgmt-automation", "azure-mgmt-iothub", "azure-mgmt-recoveryservicesbackup",
    "azure-mgmt-search", "azure-mgmt-notificationhubs", "azure-mgmt-eventhub", "azure-mgmt-datafactory",
    "msgraph-sdk", "azure-mgmt-batch", "azure-mgmt-resourcehealth", "azure-mgmt-cdn", "azure-mgmt-hybridcompute",
    "azure-mgmt-cognitiveservices", "azure-mgmt-databricks", "requests", "packaging",
]

# What must import for the role's modules to load (azure_rm_common's HAS_AZURE and the cloud code).
IMPORT_CHECK = (
    "import azure.mgmt.containerservice, azure.mgmt.core.polling.arm_polling, azure.identity, "
    "azure.cli.core.cloud, msgraph, kiota_authentication_azure, azure.mgmt.databricks, "
    "azure.mgmt.recoveryservicesbackup.activestamp.models"
)


def collection_requirements():
    """Path of the installed azure.azcollection's requirements.txt (found through the running ansible)."""
    import ansible_collections.azure.azcollection as azc  # pylint: disable=import-outside-toplevel

    return os.path.join(list(azc.__path__)[0], "requirements.txt")


def pins(requirements_path=None):
    """``name==version`` (or the line as written) for every NEEDED name, from the collection's requirements."""
    path = requirements_path or collection_requirements()
    found = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^([A-Za-z0-9_.\-]+)\s*([=<>!~].*)?$", line)
            if match:
                found[match.group(1).lower()] = line
    missing = [name for name in NEEDED if name not in found]
    if missing:
        raise RuntimeError("%s does not list %s" % (path, ", ".join(missing)))
    return [found[name] for name in NEEDED]


def _python(venv):
    return os.path.join(venv, "bin", "python")


def _fingerprint(spec):
    return hashlib.sha256(("\n".join(spec) + "\n" + sys.version).encode()).hexdigest()


def is_complete(venv, spec):
    """The venv holds this pin set (marker) and its key imports work."""
    try:
        with open(os.path.join(venv, MARKER), encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return False
    if marker.get("fingerprint") != _fingerprint(spec):
        return False
    check = subprocess.run([_python(venv), "-c", IMPORT_CHECK], capture_output=True, check=False)
    return check.returncode == 0


def ensure(venv=None, log=sys.stderr):
    """Return the python of a complete Azure SDK venv, building it when absent or incomplete.

    A build goes into a sibling folder that replaces the old venv only when it is complete; a lock file keeps
    two builders from racing. The seconds the build took are written to the marker (``build_seconds``).
    """
    venv = os.path.abspath(venv or os.environ.get("MLOPS_AZURE_SDK_VENV") or DEFAULT_VENV)
    spec = pins()
    parent = os.path.dirname(venv)
    os.makedirs(parent, exist_ok=True)
    with open(venv + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(venv, spec):
            return _python(venv)
        staging = venv + ".building"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", staging], check=True)
        # The venv keeps working after the rename: bin/python links to the base interpreter and site-packages is
        # found relative to pyvenv.cfg; only console scripts carry the staging path, and none is used.
        pip = [_python(staging), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        subprocess.run(pip + ["install", "--quiet", "--upgrade", "pip"], check=True, stdout=log, stderr=log)
        subprocess.run(pip + ["install", "--quiet"] + spec, check=True, stdout=log, stderr=log)
        check = subprocess.run([_python(staging), "-c", IMPORT_CHECK], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError("the Azure SDK venv does not import:\n" + check.stderr)
        seconds = round(time.monotonic() - started, 1)
        with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as handle:
            json.dump({"fingerprint": _fingerprint(spec), "pins": spec, "build_seconds": seconds}, handle, indent=1)
        shutil.rmtree(venv, ignore_errors=True)
        os.rename(staging, venv)
        print("built the Azure SDK venv %s in %.1f s" % (venv, seconds), file=log)
        return _python(venv)


if __name__ == "__main__":
    print(ensure())
