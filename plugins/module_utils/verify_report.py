# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end-to-end check's report: a JSON summary and a JUnit XML document.

Pure functions behind the ``mlops.platform.verify_report`` and ``mlops.platform.verify_junit`` filters,
which ``playbooks/verify.yml`` writes to disk. A check is a dict with ``name``, ``component``, a
``status`` of ``passed``, ``failed`` or ``skipped``, a ``message`` and optionally ``seconds``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from xml.sax.saxutils import escape, quoteattr

STATUSES = ("passed", "failed", "skipped")


class VerifyReportError(ValueError):
    """A malformed check; the message names the check's index and field."""


def normalize_checks(checks):
    """Checks as a list of dicts with every field present, or VerifyReportError naming the bad one."""
    if not isinstance(checks, list):
        raise VerifyReportError("checks: must be a list, got %s" % type(checks).__name__)
    out = []
    for index, check in enumerate(checks):
        path = "checks[%d]" % index
        if not isinstance(check, dict):
            raise VerifyReportError("%s: must be a dict, got %s" % (path, type(check).__name__))
        for key in ("name", "component"):
            if not isinstance(check.get(key), str) or not check[key]:
                raise VerifyReportError("%s.%s: must be a non-empty string" % (path, key))
        status = check.get("status")
        if status not in STATUSES:
            raise VerifyReportError("%s.status: must be one of %s, got %r" % (path, ", ".join(STATUSES), status))
        seconds = check.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise VerifyReportError("%s.seconds: must be a number >= 0, got %r" % (path, seconds))
        out.append({"name": check["name"], "component": check["component"], "status": status,
                    "message": str(check.get("message") or ""), "seconds": round(float(seconds), 3)})
    return out


def report(checks, environment=""):
    """The JSON report: counts per status, ``ok`` (no failure), and the checks."""
    checks = normalize_checks(checks)
    counts = dict((status, sum(1 for c in checks if c["status"] == status)) for status in STATUSES)
    return {"environment": environment, "ok": counts["failed"] == 0, "total": len(checks),
            "passed": counts["passed"], "failed": counts["failed"], "skipped": counts["skipped"],
            "checks": checks}


def junit_xml(checks, suite="mlops.platform.verify"):
    """A JUnit XML document (one testsuite, a testcase per check, classname = component)."""
    checks = normalize_checks(checks)
    failures = sum(1 for c in checks if c["status"] == "failed")
    skipped = sum(1 for c in checks if c["status"] == "skipped")
    total = sum(c["seconds"] for c in checks)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<testsuites name=%s tests="%d" failures="%d" skipped="%d" time="%.3f">'
             % (quoteattr(suite), len(checks), failures, skipped, total),
             '  <testsuite name=%s tests="%d" failures="%d" errors="0" skipped="%d" time="%.3f">'
             % (quoteattr(suite), len(checks), failures, skipped, total)]
    for check in checks:
        head = '    <testcase classname=%s name=%s time="%.3f"' % (
            quoteattr(check["component"]), quoteattr(check["name"]), check["seconds"])
        if check["status"] == "passed":
            lines.append(head + "/>")
        elif check["status"] == "skipped":
            lines.append(head + ">")
            lines.append("      <skipped message=%s/>" % quoteattr(check["message"]))
            lines.append("    </testcase>")
        else:
            lines.append(head + ">")
            lines.append("      <failure message=%s>%s</failure>" % (quoteattr(check["message"][:500]), escape(check["message"])))
            lines.append("    </testcase>")
    lines.extend(["  </testsuite>", "</testsuites>", ""])
    return "\n".join(lines)


def helm_check(result):
    """A check from one ``kubernetes.core.helm_info`` loop result: the release exists and is deployed."""
    component = str(result.get("item") or "helm")
    status = result.get("status") or {}
    name = "Helm release of %s" % component
    if not status:
        return {"name": name, "component": component, "status": "failed", "message": "release not found"}
    state = status.get("status")
    message = "%s %s, chart %s, revision %s" % (status.get("name", ""), state, status.get("chart", "?"), status.get("revision", "?"))
    return {"name": name, "component": component, "status": "passed" if state == "deployed" else "failed",
            "message": message.strip()}


def _deployment_problem(deployment):
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    available = status.get("availableReplicas") or 0
    if available < wanted:
        return "%s: %d of %d replicas available" % (meta.get("name", "?"), available, wanted)
    return None


def workload_check(result):
    """A check from one ``kubernetes.core.k8s_info`` loop result over a component's Deployments."""
    component = str(result.get("item") or "workloads")
    deployments = result.get("resources") or []
    name = "Deployments of %s available" % component
    if not deployments:
        return {"name": name, "component": component, "status": "failed", "message": "no Deployment found"}
    problems = [p for p in (_deployment_problem(d) for d in deployments) if p]
    if problems:
        return {"name": name, "component": component, "status": "failed", "message": "; ".join(problems)}
    names = sorted((d.get("metadata") or {}).get("name", "?") for d in deployments)
    return {"name": name, "component": component, "status": "passed", "message": "available: " + ", ".join(names)}


def isvc_check(isvc):
    """A check from one InferenceService object: its Ready condition, with the reason when it is not."""
    meta = isvc.get("metadata") or {}
    status = isvc.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    name = "InferenceService %s/%s Ready" % (meta.get("namespace", "?"), meta.get("name", "?"))
    if ready and ready[0].get("status") == "True":
        return {"name": name, "component": "kserve", "status": "passed", "message": status.get("url") or ""}
    reason = ready[0].get("message") or ready[0].get("reason") if ready else "no Ready condition yet"
    return {"name": name, "component": "kserve", "status": "failed", "message": reason or "not Ready"}
