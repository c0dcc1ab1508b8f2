#!/usr/bin/env python
"""Run the testbed's node agent: simulated nodes, kubelet, device plugin and GPU operator (see docs/testbed-node-agent.md)."""

import importlib
import os
import sys

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(importlib.import_module('node_agent.agent').main())
