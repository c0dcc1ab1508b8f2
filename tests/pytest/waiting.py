# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded waiting for tests against a live cluster: the one polling loop the test suites share."""

from __future__ import annotations

import time

import pytest


def poll_until(predicate, timeout=60.0, what="condition", interval=0.25):
    """Call ``predicate`` every ``interval`` seconds until it returns a truthy value, and return that value.

    Fails the test after ``timeout`` seconds, naming ``what`` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail("timed out after %ss waiting for %s (last value: %r)" % (timeout, what, last))
    return None
