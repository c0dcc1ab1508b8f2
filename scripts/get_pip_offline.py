"""Offline stand-in for get-pip.py: bootstrap the bundled pip, then run `pip install ARGS`.

scripts/bootstrap.sh installs this as ~/.ansible/test/cache/get_pip_<version>.py, where
ansible-test looks before it downloads a get-pip script. get-pip.py's own flags
--no-setuptools/--no-wheel mean "do not add those packages"; pip has no such flags, so they are
handled here.
"""
import ensurepip
import os
import subprocess
import sys

OWN_FLAGS = {"--no-setuptools", "--no-wheel"}
args = [arg for arg in sys.argv[1:] if arg not in OWN_FLAGS]
# ensurepip clears PIP_* variables and points PIP_CONFIG_FILE at /dev/null in this process; the
# real install below must see the machine's pip configuration (index, proxy CA), so keep a copy.
env = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
rc = subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env)
if rc == 0 and "--no-setuptools" in sys.argv[1:]:
    rc = subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"], env=env)
sys.exit(rc)
