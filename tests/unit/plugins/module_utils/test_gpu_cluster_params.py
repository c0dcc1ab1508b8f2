# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""validate_check_params rejects malformed label selectors before any API request, naming the option."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.gpu_cluster import validate_check_params


def params(**overrides):
    base = dict(label_selectors=["accelerator=nvidia-gpu"], min_nodes=1, gpus_per_node=None, resource="nvidia.com/gpu",
                page_size=500)
    base.update(overrides)
    return base


@pytest.mark.parametrize("selectors", [
    ["accelerator=nvidia-gpu"], ["node-type in (ai,gpu)", "!spot"], ["a!=b,c"], [], [""],
])
def test_valid_selectors_pass(selectors):
    assert validate_check_params(params(label_selectors=selectors)) is None


@pytest.mark.parametrize("selector", ["accelerator in (a", "=nvidia-gpu", "!=x", "a b c"])
def test_malformed_selectors_name_the_option(selector):
    message = validate_check_params(params(label_selectors=[selector]))
    assert message is not None and message.startswith("label_selectors: ")
    assert repr(selector) in message
