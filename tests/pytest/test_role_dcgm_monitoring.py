# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dcgm_monitoring role's render step, without a cluster: curated counters and dashboard
metrics against upstream dcgm-exporter's counter lists, the alert rules under `promtool test
rules`, the PrometheusRule and ServiceMonitor against the real Prometheus Operator CRDs, and the
standalone exporter's values against the real chart."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

import upstream

PROMTOOL_TESTS = os.path.join(upstream.ROOT, "tests", "promtool")
METRIC = re.compile(r"\bDCGM_FI_[A-Z0-9_]+\b")


def render(fact, extra=None):
    return upstream.render_role_values("dcgm_monitoring", extra or {}, fact=fact)


def upstream_counters():
    """{field: type} of every field upstream lists, commented-out examples included (they are valid fields)."""
    fields = {}
    for name in ("default-counters.csv", "dcp-metrics-included.csv"):
        with open(upstream.upstream_path("dcgm-exporter", "etc", name), encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if not row or not row[0].strip():
                    continue
                field = row[0].lstrip("#").strip()
                if field.startswith("DCGM_FI_") and len(row) >= 2:
                    fields[field] = row[1].strip()
    return fields


@pytest.fixture(scope="module")
def counters():
    return render("__dcgm_monitoring_counter_list")


@pytest.fixture(scope="module")
def rule_groups():
    return render("dcgm_monitoring_rule_groups")


def test_upstream_lists_are_read():
    fields = upstream_counters()
    assert fields["DCGM_FI_DEV_GPU_UTIL"] == "gauge"
    assert fields["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"] == "counter"
    assert fields["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"] == "gauge"


def test_curated_counters_are_upstream_fields_with_upstream_types(counters):
    fields = upstream_counters()
    wrong = ["%s (%s)" % (c["field"], c["type"]) for c in counters if fields.get(c["field"]) != c["type"]]
    assert not wrong, "not in dcgm-exporter's default-counters.csv/dcp-metrics-included.csv with that type: %s" % wrong


def test_a_made_up_counter_is_caught():
    fields = upstream_counters()
    assert "DCGM_FI_DEV_GPU_UTILISATION" not in fields
    assert fields.get("DCGM_FI_DEV_XID_ERRORS") != "counter"


def test_counters_csv_lists_every_field_in_the_exporter_format(counters):
    text = render("__dcgm_monitoring_counters_csv")
    rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].startswith("#")]
    assert [r[0].strip() for r in rows] == [c["field"] for c in counters]
    assert all(len(r) >= 3 and r[1].strip() in ("gauge", "counter", "label") for r in rows)


def test_alert_rules_use_only_curated_counters(rule_groups, counters):
    curated = {c["field"] for c in counters}
    used = set(METRIC.findall(json.dumps([r["expr"] for g in rule_groups for r in g["rules"]])))
    assert used and used <= curated, used - curated


def test_every_threshold_is_a_variable():
    groups = render("dcgm_monitoring_rule_groups", {
        "dcgm_monitoring_xid_critical_codes": [79], "dcgm_monitoring_temperature_warning_celsius": 70,
        "dcgm_monitoring_temperature_critical_celsius": 80, "dcgm_monitoring_memory_used_percent": 81,
        "dcgm_monitoring_ecc_window": "7m", "dcgm_monitoring_ecc_dbe_threshold": 3, "dcgm_monitoring_remapped_rows_threshold": 4,
        "dcgm_monitoring_idle_utilization_percent": 2, "dcgm_monitoring_idle_minutes": 45, "dcgm_monitoring_exporter_down_for": "9m",
        "dcgm_monitoring_temperature_for": "2m", "dcgm_monitoring_memory_for": "3m", "dcgm_monitoring_xid_for": "4m",
        "dcgm_monitoring_alert_labels": {"team": "ml-platform"}})
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert rules["GpuXidCriticalError"]["expr"] == "(DCGM_FI_DEV_XID_ERRORS == 79)"
    assert rules["GpuXidCriticalError"]["for"] == "4m"
    assert "> 70" in rules["GpuTemperatureHigh"]["expr"] and "<= 80" in rules["GpuTemperatureHigh"]["expr"]
    assert rules["GpuTemperatureCritical"]["expr"].endswith("> 80") and rules["GpuTemperatureCritical"]["for"] == "2m"
    assert rules["GpuMemoryNearFull"]["expr"].endswith("> 81") and rules["GpuMemoryNearFull"]["for"] == "3m"
    assert rules["GpuEccDoubleBitErrors"]["expr"] == "increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[7m]) > 3"
    assert rules["GpuUncorrectableRowRemaps"]["expr"] == "increase(DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS[7m]) > 4"
    assert "[45m]" in rules["GpuAllocatedButIdle"]["expr"] and rules["GpuAllocatedButIdle"]["expr"].endswith("< 2")
    assert rules["DcgmExporterDown"]["for"] == "9m"
    assert all(r["labels"]["team"] == "ml-platform" for r in rules.values())


def promtool():
    cache = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
    for candidate in (os.environ.get("PROMTOOL"), os.path.join(cache, "bin", "promtool"), shutil.which("promtool")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("promtool not found: run scripts/bootstrap.d/promtool.sh (or `make bootstrap`), or set PROMTOOL")


def run_promtool(rule_groups, test_file, tmp_path):
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule_groups}), encoding="utf-8")
    shutil.copy(test_file, tmp_path / os.path.basename(test_file))
    return subprocess.run([promtool(), "test", "rules", os.path.basename(test_file)], cwd=tmp_path, capture_output=True, text=True, check=False)


def test_promtool_checks_the_rendered_rules(rule_groups, tmp_path):
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule_groups}), encoding="utf-8")
    proc = subprocess.run([promtool(), "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_promtool_unit_test(rule_groups):
    with open(os.path.join(PROMTOOL_TESTS, "dcgm_alerts.test.yml"), encoding="utf-8") as handle:
        tests = yaml.safe_load(handle)["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    alerts = {r["alert"] for g in rule_groups for r in g["rules"]}
    assert alerts == tested, "alerts without a firing test: %s" % sorted(alerts - tested)


def test_promtool_unit_tests_pass(rule_groups, tmp_path):
    proc = run_promtool(rule_groups, os.path.join(PROMTOOL_TESTS, "dcgm_alerts.test.yml"), tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_promtool_unit_tests_can_fail(tmp_path):
    """With a higher temperature threshold the 88 C warning must no longer fire, and promtool says so."""
    hotter = {"dcgm_monitoring_temperature_warning_celsius": 90, "dcgm_monitoring_temperature_critical_celsius": 99}
    groups = render("dcgm_monitoring_rule_groups", hotter)
    proc = run_promtool(groups, os.path.join(PROMTOOL_TESTS, "dcgm_alerts.test.yml"), tmp_path)
    assert proc.returncode != 0
    assert "GpuTemperatureHigh" in proc.stdout + proc.stderr


def test_dashboard_uses_only_metrics_the_exporter_emits(counters):
    dashboard = render("dcgm_monitoring_dashboard")
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = set(METRIC.findall(" ".join(exprs)))
    curated = {c["field"] for c in counters}
    assert used and used <= curated, used - curated
    assert used <= set(upstream_counters())
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar():
    cm = render("dcgm_monitoring_dashboard_configmap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["dcgm-gpu.json"])["uid"] == "mlops-dcgm-gpu"


def crd_schema(filename, version="v1"):
    crd = upstream.load_yaml_all("prometheus-operator-crds", filename)[0]
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


def schema_errors(schema, obj):
    return ["%s: %s" % (".".join(map(str, e.absolute_path)), e.message) for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]


@pytest.mark.parametrize("source", ["gpu-operator", "standalone"])
def test_the_real_crds_accept_the_prometheus_rule_and_service_monitor(source):
    extra = {"dcgm_monitoring_exporter_source": source, "dcgm_monitoring_prometheus_selector_labels": {"release": "kube-prometheus-stack"}}
    rule = render("dcgm_monitoring_prometheus_rule", extra)
    monitor = render("dcgm_monitoring_service_monitor", extra)
    assert not schema_errors(crd_schema("monitoring.coreos.com_prometheusrules.yaml"), rule)
    assert not schema_errors(crd_schema("monitoring.coreos.com_servicemonitors.yaml"), monitor)
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True  # keeps the exporter's pod/namespace labels
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_real_crd_catches_a_bad_rule():
    rule = render("dcgm_monitoring_prometheus_rule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert schema_errors(crd_schema("monitoring.coreos.com_prometheusrules.yaml"), rule)


def test_standalone_exporter_values_conform_to_the_real_chart():
    values = render("dcgm_monitoring_release_values")
    upstream.assert_conforms("dcgm-exporter", values)
    assert values["extraConfigMapVolumes"][0]["configMap"]["name"] == "dcgm-exporter-metrics"
    assert values["serviceMonitor"]["enabled"] is False


def test_a_planted_wrong_path_fails_the_exporter_conformance_check():
    values = render("dcgm_monitoring_release_values", {"dcgm_monitoring_release_overrides": {"serviceMonitor": {"enabeld": True}}})
    assert any(e.startswith("serviceMonitor.enabeld:") for e in upstream.conformance_errors("dcgm-exporter", values))


@pytest.mark.parametrize("extra, variable", [
    ({"dcgm_monitoring_temperature_warning_celsius": 95}, "dcgm_monitoring_temperature_warning_celsius"),
    ({"dcgm_monitoring_memory_for": "ten minutes"}, "durations"),
    ({"dcgm_monitoring_exporter_source": "daemonset"}, "dcgm_monitoring_exporter_source"),
    ({"dcgm_monitoring_counters": [{"field": "DCGM_FI_DEV_GPU_TEMP", "type": "gauge", "help": "t"}]}, "DCGM_FI_DEV_GPU_UTIL"),
])
def test_bad_input_fails_before_anything_changes_naming_the_variable(extra, variable):
    with pytest.raises(AssertionError) as failure:
        upstream.render_role_values("dcgm_monitoring", extra, fact="dcgm_monitoring_state", tasks_from="main")
    assert variable in str(failure.value)
