# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo's model registry: a real MLflow server on this machine for playbooks/lifecycle.yml.

On the testbed no MLflow pod answers requests (the node agent plays the pods), so the demo's
train -> register -> serve step registers the model in a real MLflow server started here, exactly as the
mlflow role renders its command line (PostgreSQL from Debian, an S3 store from moto, MLflow's basic
auth). It writes the URL and the admin credentials to ``--out`` (mode 0600, never on a command line),
then serves until it receives SIGTERM or SIGINT.

Usage: python scripts/demo_registry.py --out FILE
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path[:0] = [os.path.join(ROOT, "tests", "pytest"), os.path.join(ROOT, "tests", "testbed"), os.path.join(ROOT, ".collections")]

from mlflow_server import running_mlflow_server  # noqa: E402  (the tests' server, shared on purpose)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with running_mlflow_server() as server:
        fd = os.open(args.out + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"url": server.uri, "username": server.username, "password": server.password}, handle)
        os.replace(args.out + ".tmp", args.out)
        print("[demo] MLflow registry at %s" % server.uri, flush=True)
        stop.wait()
    os.unlink(args.out)


if __name__ == "__main__":
    main()
