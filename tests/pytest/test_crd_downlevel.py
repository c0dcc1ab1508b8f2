# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of tests/testbed/crd_downlevel.py: it removes exactly what v1.20 cannot hold, and counts it.

Offline: synthetic CRDs, and the real upstream CRDs (MLOPS_UPSTREAM_DATA; missing data fails, never skips).
"""

from __future__ import annotations

import copy
import os

import pytest

import crd_downlevel
import upstream

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# The custom resources the roles create; the testbed must serve each of them.
REQUIRED = (
    "clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com",
    "inferenceservices.serving.kserve.io", "servingruntimes.serving.kserve.io", "clusterservingruntimes.serving.kserve.io",
    "servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com",
)


def crd(schema, **version_extra):
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    version.update(version_extra)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "things", "kind": "Thing"},
                     "versions": [version]}}


CEL = [{"rule": "self.a == self.b", "message": "a must equal b"}]
SYNTHETIC = {
    "type": "object",
    "x-kubernetes-validations": CEL,
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "default": "", "pattern": "^[a-z]*$"},
                "kept": {"type": "string", "default": "x"},
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "list": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                         "items": {"type": "object", "required": ["name"], "x-kubernetes-validations": CEL,
                                   "properties": {"name": {"type": "string", "default": ""}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
                "choice": {"oneOf": [{"type": "string", "default": ""}], "x-kubernetes-map-type": "atomic"},
                "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "count": {"type": "integer", "default": 0},
            },
        },
    },
}


def test_removes_and_counts_exactly_what_v120_cannot_hold():
    original = crd(copy.deepcopy(SYNTHETIC), selectableFields=[{"jsonPath": ".spec.name"}])
    before = copy.deepcopy(original)
    lowered, removed = crd_downlevel.downlevel(original)
    assert original == before, "the input must not be changed"
    assert removed == {"x-kubernetes-validations": 2, "empty-string-default": 4, "selectableFields": 1}
    version = lowered["spec"]["versions"][0]
    assert "selectableFields" not in version
    schema = version["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]["properties"]
    assert "x-kubernetes-validations" not in schema
    assert spec["name"] == {"type": "string", "pattern": "^[a-z]*$"}, "only the empty default goes"
    assert spec["kept"]["default"] == "x" and spec["count"]["default"] == 0
    assert spec["list"]["items"] == {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    assert spec["list"]["x-kubernetes-list-type"] == "map" and spec["list"]["x-kubernetes-list-map-keys"] == ["name"]
    assert spec["labels"]["additionalProperties"] == {"type": "string"}
    assert spec["choice"] == {"oneOf": [{"type": "string"}], "x-kubernetes-map-type": "atomic"}
    assert spec["port"]["x-kubernetes-int-or-string"] is True
    assert spec["blob"]["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["properties"]["spec"]["required"] == ["name"]


def test_nothing_to_remove_is_an_empty_count():
    plain = crd({"type": "object", "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}})
    lowered, removed = crd_downlevel.downlevel(plain)
    assert removed == {} and lowered == plain


def test_refuses_what_is_not_a_v1_crd():
    with pytest.raises(ValueError, match="not an apiextensions.k8s.io/v1 CustomResourceDefinition"):
        crd_downlevel.downlevel({"apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "CustomResourceDefinition"})


def test_missing_upstream_data_is_an_error_naming_the_directory(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        crd_downlevel.load_crds(missing)
    (tmp_path / "partial" / "gpu-operator" / "crds").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no CRDs in .*partial/gpu-operator/crds"):
        crd_downlevel.load_crds(str(tmp_path / "partial"))


def _flatten(node, prefix=()):
    """Every leaf of a JSON tree as {path: value}; list indexes are path parts."""
    if isinstance(node, dict) and node:
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, prefix + (key,)))
        return out
    if isinstance(node, list) and node:
        out = {}
        for index, value in enumerate(node):
            out.update(_flatten(value, prefix + (index,)))
        return out
    return {prefix: node}


def _is_removable(path, value):
    if "x-kubernetes-validations" in path:
        return True
    if "selectableFields" in path:
        return True
    return path[-1] == "default" and value == ""


@pytest.fixture(scope="module")
def real():
    upstream.upstream_path()  # fails, naming the directory, when the data is missing
    return {c["metadata"]["name"]: (source, c) for source, c in crd_downlevel.load_crds(upstream.UPSTREAM)}


def test_serves_every_crd_the_roles_need(real):
    missing = [name for name in REQUIRED if name not in real]
    assert not missing, "upstream CRDs missing from %s: %s" % (upstream.UPSTREAM, missing)


def test_real_crds_lose_only_what_v120_cannot_hold(real):
    """Down-levelling a real CRD changes nothing but the removed keys, and the count is the number removed."""
    for name, (_source, original) in real.items():
        lowered, removed = crd_downlevel.downlevel(original)
        before, after = _flatten(original), _flatten(lowered)
        assert set(after) <= set(before), name
        assert all(after[path] == before[path] for path in after), name
        gone = [path for path in before if path not in after]
        assert all(_is_removable(path, before[path]) for path in gone), (name, [p for p in gone if not _is_removable(p, before[p])][:3])
        # Each removed occurrence is one key; a CEL rule list counts once, however many rules it holds.
        cel = {path[:path.index("x-kubernetes-validations") + 1] for path in gone if "x-kubernetes-validations" in path}
        empty_defaults = [path for path in gone if path[-1] == "default" and "x-kubernetes-validations" not in path]
        assert removed.get("x-kubernetes-validations", 0) == len(cel), name
        assert removed.get("empty-string-default", 0) == len(empty_defaults), name
        text = repr(lowered)
        assert "x-kubernetes-validations" not in text, name


def test_report_matches_docs(real):
    """docs/testbed.md carries the down-level report as measured: every CRD with removals, with its counts."""
    _crds, rows = crd_downlevel.report(upstream.UPSTREAM)
    with open(os.path.join(ROOT, "docs", "testbed.md"), encoding="utf-8") as handle:
        docs = handle.read()
    for line in crd_downlevel.markdown_rows(rows):
        assert line in docs, "docs/testbed.md lacks the report row:\n" + line
    assert set(rows) == set(real)
