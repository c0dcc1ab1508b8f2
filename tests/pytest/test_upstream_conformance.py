# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the values conformance check itself (tests/pytest/upstream.py).

The check must accept what the real charts understand and refuse, naming the path, what they do not:
for every chart in CHART_DIRS a planted wrong path fails, and where upstream ships a schema a value of
the wrong type fails too. Missing upstream data fails the test with a clear message; it never skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import upstream

# Per chart: values a role could really set (they must conform), and planted wrong paths with the
# dotted path the error must name. The wrong paths are near misses of real keys.
CASES = {
    "gpu-operator": {
        "valid": {"driver": {"enabled": False}, "toolkit": {"enabled": False}, "cdi": {"enabled": True},
                  "mig": {"strategy": "single"}, "migManager": {"enabled": False},
                  "devicePlugin": {"config": {"create": True, "name": "time-slicing-config", "default": "any",
                                              "data": {"any": "version: v1\n"}}},
                  "dcgmExporter": {"serviceMonitor": {"enabled": True}},
                  "daemonsets": {"labels": {"team": "ml"},  # labels: {} upstream, an open map
                                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
                  "node-feature-discovery": {"worker": {"tolerations": []}}},
        "wrong": [({"driver": {"enabeld": False}}, "driver.enabeld"),
                  ({"devicePlugin": {"cofig": {"name": "x"}}}, "devicePlugin.cofig.name"),
                  ({"driver": {"version": {"major": 580}}}, "driver.version.major"),  # below a string default
                  ({"operator": {"defaultRuntime": "containerd"}}, "operator.defaultRuntime")],  # gone upstream
    },
    "node-feature-discovery": {
        "valid": {"worker": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                             "nodeSelector": {"kubernetes.io/os": "linux"}},
                  "master": {"replicaCount": 1, "resources": {"requests": {"cpu": "100m"}}}},
        "wrong": [({"worker": {"tolerationz": []}}, "worker.tolerationz"),
                  ({"master": {"replicas": 2}}, "master.replicas")],
        "type": ({"master": {"replicaCount": "two"}}, "master.replicaCount"),
    },
    "jupyterhub": {
        "valid": {"hub": {"db": {"type": "sqlite-memory"}, "config": {"JupyterHub": {"authenticator_class": "dummy"}}},
                  "proxy": {"service": {"type": "ClusterIP"}},
                  "singleuser": {"image": {"name": "quay.io/jupyter/pytorch-notebook", "tag": "cuda12-2025-11-10"},
                                 "profileList": [{"display_name": "GPU"}],
                                 "cpu": {"limit": 4, "guarantee": 0.5}, "memory": {"limit": "16G"},
                                 "storage": {"capacity": "10Gi", "dynamic": {"storageClass": "managed-csi"}}},
                  "cull": {"enabled": True, "timeout": 3600, "every": 300},
                  "scheduling": {"userScheduler": {"enabled": False}}},
        "wrong": [({"singleuser": {"profilelist": []}}, "singleuser.profilelist"),
                  ({"cull": {"timout": 60}}, "cull.timout"),
                  ({"hub": {"db": {"typ": "sqlite-pvc"}}}, "hub.db.typ")],
        "type": ({"singleuser": {"cpu": {"limit": "two"}}}, "singleuser.cpu.limit"),
    },
    "kserve-crd": {
        "valid": {},
        "wrong": [({"crds": {"enabled": True}}, "crds.enabled")],  # the chart reads no values at all
    },
    "kserve-resources": {
        "valid": {"kserve": {"controller": {"deploymentMode": "RawDeployment", "gateway": {"domain": "models.example.com"}},
                             "storage": {"resources": {"requests": {"cpu": "100m"}}}}},
        "wrong": [({"kserve": {"controller": {"deploymentmode": "Standard"}}}, "kserve.controller.deploymentmode"),
                  ({"controller": {"deploymentMode": "Standard"}}, "controller.deploymentMode")],
    },
    "mlflow": {
        "valid": {"backendStore": {"postgres": {"enabled": True, "host": "pg", "port": 5432, "database": "mlflow",
                                                "user": "mlflow", "password": "pgpass"}},
                  "artifactRoot": {"proxiedArtifactStorage": True,
                                   "azureBlob": {"enabled": True, "container": "mlflow", "storageAccount": "acct"}},
                  "auth": {"enabled": True, "adminUsername": "admin", "adminPassword": "s3cret"},
                  "extraVolumes": [{"name": "artifacts", "persistentVolumeClaim": {"claimName": "mlflow-artifacts"}}]},
        "wrong": [({"backendStore": {"postgress": {"enabled": True}}}, "backendStore.postgress.enabled"),
                  ({"auth": {"enable": True}}, "auth.enable")],
        "type": ({"replicaCount": "two"}, "replicaCount"),
    },
    "dcgm-exporter": {
        "valid": {"serviceMonitor": {"enabled": True, "interval": "15s"},
                  "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
        "wrong": [({"serviceMonitor": {"enable": True}}, "serviceMonitor.enable"),
                  ({"serviceMonitr": {"enabled": True}}, "serviceMonitr.enabled")],
    },
}
WITH_SCHEMA = ("node-feature-discovery", "jupyterhub", "mlflow")


def test_every_chart_is_covered():
    assert set(CASES) == set(upstream.CHART_DIRS)
    assert {chart for chart in upstream.CHART_DIRS if upstream.chart_schema(chart) is not None} == set(WITH_SCHEMA)
    assert all("type" in CASES[chart] for chart in WITH_SCHEMA)


@pytest.mark.parametrize("chart", sorted(upstream.CHART_DIRS))
def test_valid_values_conform(chart):
    upstream.assert_conforms(chart, CASES[chart]["valid"])


@pytest.mark.parametrize("chart", sorted(upstream.CHART_DIRS))
def test_the_chart_defaults_conform(chart):
    """The real values.yaml, handed back as values, conforms: every path of it is legal by definition."""
    upstream.assert_conforms(chart, upstream.chart_values(chart))


CASES_WRONG = [(chart, values, path) for chart in sorted(CASES) for values, path in CASES[chart]["wrong"]]


@pytest.mark.parametrize("chart,values,path", CASES_WRONG, ids=["%s:%s" % (c, p) for c, _v, p in CASES_WRONG])
def test_planted_wrong_path_fails_naming_it(chart, values, path):
    errors = upstream.conformance_errors(chart, values)
    assert errors, "a wrong values path passed for %s: %s" % (chart, path)
    assert any(err.startswith(path + ": ") for err in errors), errors
    assert all(upstream.RELEASES[chart] in err for err in errors), errors
    with pytest.raises(AssertionError, match=path.replace(".", r"\.")):
        upstream.assert_conforms(chart, values)


@pytest.mark.parametrize("chart", sorted(upstream.CHART_DIRS))
def test_unknown_key_under_every_strict_map_fails(chart):
    """Systematically: an unknown key under each top-level map of the real values.yaml is refused, unless
    upstream itself declares that map open (an empty ``{}`` default or ``additionalProperties: true``)."""
    defaults = upstream.chart_values(chart)
    schema = upstream.chart_schema(chart)
    checked = 0
    for key, value in defaults.items():
        if not isinstance(value, dict) or not value:
            continue
        if schema is not None and upstream._schema_admits(schema, (key, "zzUnknown")):  # pylint: disable=protected-access
            continue  # upstream's schema admits any key there
        errors = upstream.conformance_errors(chart, {key: {"zzUnknown": True}})
        assert any(err.startswith("%s.zzUnknown: " % key) for err in errors), (chart, key, errors)
        checked += 1
    top = upstream.conformance_errors(chart, {"zzUnknown": 1})
    assert any(err.startswith("zzUnknown: ") for err in top), (chart, top)
    assert checked or not [v for v in defaults.values() if isinstance(v, dict) and v], chart


@pytest.mark.parametrize("chart", WITH_SCHEMA)
def test_schema_type_error_fails_naming_the_path(chart):
    values, path = CASES[chart]["type"]
    assert upstream._values_admit(upstream.chart_values(chart), tuple(path.split("."))), \
        "the planted path must exist, so that only the type is wrong"  # pylint: disable=protected-access
    errors = upstream.conformance_errors(chart, values)
    assert any(err.startswith(path + ": ") and "values.schema.json" in err for err in errors), errors


def test_schema_check_follows_references():
    """NFD's schema types pod fields through ``$ref``s into Kubernetes definitions; a wrong key below one fails."""
    ok = {"master": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}}
    upstream.assert_conforms("node-feature-discovery", ok)
    bad = {"master": {"affinity": {"nodeAffinity": {"requiredDuringScheduling": {}}}}}
    errors = upstream.conformance_errors("node-feature-discovery", bad)
    assert any(err.startswith("master.affinity.nodeAffinity.requiredDuringScheduling: ") for err in errors), errors


def test_schema_admits_rules():
    properties = {
        "open": {"type": "object"},
        "strict": {"type": "object", "properties": {"a": {"type": "string"}}},
        "extra": {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "object", "properties": {"b": {}}}},
        "ref": {"$ref": "#/$defs/port"},
        "any": {"anyOf": [{"properties": {"x": {}}}, {"properties": {"y": {}}}]},
        "pattern": {"type": "object", "patternProperties": {"^nvidia": {"type": "string"}}},
        "scalar": {"type": "string"},
    }
    root = {"type": "object", "$defs": {"port": {"type": "object", "properties": {"number": {"type": "integer"}}}},
            "properties": properties}
    admits = upstream._schema_admits  # pylint: disable=protected-access
    assert admits(root, ("open", "anything", "deep"))
    assert admits(root, ("strict", "a")) and not admits(root, ("strict", "b"))
    assert admits(root, ("extra", "zz", "b")) and not admits(root, ("extra", "zz", "c"))
    assert admits(root, ("ref", "number")) and not admits(root, ("ref", "nubmer"))
    assert admits(root, ("any", "x")) and admits(root, ("any", "y")) and not admits(root, ("any", "z"))
    assert admits(root, ("pattern", "nvidia.com/gpu")) and not admits(root, ("pattern", "amd.com/gpu"))
    assert not admits(root, ("scalar", "sub"))
    assert not admits(root, ("missing",))


def test_missing_data_fails_with_a_clear_message(monkeypatch, tmp_path):
    missing = str(tmp_path / "no-such-upstream-data")
    monkeypatch.setattr(upstream, "UPSTREAM", missing)
    with pytest.raises(pytest.fail.Exception, match="upstream chart data missing: %s" % missing):
        upstream.conformance_errors("gpu-operator", {"driver": {"enabled": False}})
    with pytest.raises(pytest.fail.Exception, match="MLOPS_UPSTREAM_DATA"):
        upstream.chart_schema("jupyterhub")


def test_missing_data_dir_from_the_environment_fails_never_skips(tmp_path):
    """MLOPS_UPSTREAM_DATA pointing at a missing directory: a test using the check fails, and says why."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(textwrap.dedent("""
        import upstream

        def test_probe():
            upstream.assert_conforms("mlflow", {"replicaCount": 1})
    """), encoding="utf-8")
    env = dict(os.environ, MLOPS_UPSTREAM_DATA=str(tmp_path / "gone"), PYTHONPATH=os.path.dirname(upstream.__file__))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(probe)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed" in out and "skipped" not in out, out
    assert "upstream chart data missing: %s" % (tmp_path / "gone") in out, out
