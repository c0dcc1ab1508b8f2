# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault proxy as a pytest fixture: ``from faults import fault_proxy`` in a test module.

The proxy runs in the test process, in front of the session's testbed; tests change its rate and mix
with ``proxy.configure(...)`` and read its counters with ``proxy.stats_snapshot()``. Its kubeconfig is
``proxy.kubeconfig``.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlparse

import pytest


from fault_proxy import FaultPlan, FaultProxy


def testbed_state_and_port(kubeconfig):
    """The testbed's state directory (where its kubeconfig lives) and its API server port."""
    state = os.path.dirname(os.path.abspath(kubeconfig))
    if not os.path.exists(os.path.join(state, "pki", "ca.key")):
        pytest.fail("the fault proxy needs the testbed's PKI beside its kubeconfig; %s has none "
                    "(MLOPS_TESTBED_KUBECONFIG must point at a testbed's kubeconfig)" % state)
    with open(kubeconfig) as handle:
        server = json.load(handle)["clusters"][0]["cluster"]["server"]
    return state, urlparse(server).port


@pytest.fixture(scope="module")
def fault_proxy(testbed, tmp_path_factory):
    state, port = testbed_state_and_port(testbed.kubeconfig)
    folder = tmp_path_factory.mktemp("fault-proxy")
    proxy = FaultProxy(FaultPlan(rate=0.0, seed=1), state_dir=state, api_port=port,
                       stats_file=str(folder / "stats.json"))
    proxy.kubeconfig = proxy.write_kubeconfig(str(folder / "kubeconfig"))
    proxy.start()
    yield proxy
    proxy.stop()
