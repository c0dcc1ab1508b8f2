#!/usr/bin/env python
"""Run the testbed's node agent: simulated nodes, kubelet, device plugin and GPU operator (see docs/testbed-node-agent.md).

The package it runs is tests/testbed/node_agent/, importable because Python puts this script's directory first
on the module search path.
"""

import sys

from node_agent.agent import main

if __name__ == '__main__':
    sys.exit(main())
