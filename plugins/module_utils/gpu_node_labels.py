# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning of the labels and taints the gpu_nodepool role manages on existing nodes.

A JSON merge patch replaces ``spec.taints`` as a whole, so the plan always carries the complete list: the taints the
node already has, with the role's taints merged in (or taken out again). What the role added is recorded in an
annotation on the node, so that ``state=absent`` (or a later run with fewer labels/taints) removes only those and puts
back a value the role overwrote. Nothing here talks to a cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import TAINT_EFFECTS

ANNOTATION = "mlops.platform/gpu-nodepool-managed"

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*"
_KEY_RE = re.compile(r"^(%s/)?%s$" % (_PREFIX, _NAME))
_VALUE_RE = re.compile(r"^(%s)?$" % _NAME)


class NodeLabelError(ValueError):
    """Invalid labels, taints or nodes."""


def _check_key(key, what):
    if not isinstance(key, str) or not _KEY_RE.match(key) or ("/" in key and len(key.split("/")[0]) > 253):
        raise NodeLabelError("%s key %r is not a valid Kubernetes qualified name" % (what, key))


def _check_value(value, what, key):
    if not isinstance(value, str) or not _VALUE_RE.match(value):
        raise NodeLabelError("%s %s value %r is not a valid Kubernetes label value" % (what, key, value))


def normalise_labels(labels):
    """Validate a label mapping; values are returned as strings."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise NodeLabelError("labels must be a mapping of key to value, got %s" % type(labels).__name__)
    result = {}
    for key, value in labels.items():
        _check_key(key, "label")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        _check_value(value, "label", key)
        result[key] = value
    return result


def parse_taint(taint):
    """A taint as ``{key, value, effect}`` from a mapping or from ``key[=value]:Effect``."""
    if isinstance(taint, str):
        if ":" not in taint:
            raise NodeLabelError("taint %r must look like key=value:Effect" % taint)
        head, effect = taint.rsplit(":", 1)
        key, _sep, value = head.partition("=")
        taint = {"key": key, "value": value, "effect": effect}
    if not isinstance(taint, dict):
        raise NodeLabelError("taint %r must be a mapping with key, value and effect or a key=value:Effect string" % (taint,))
    unknown = set(taint) - {"key", "value", "effect"}
    if unknown:
        raise NodeLabelError("taint %r has unknown fields: %s" % (taint, ", ".join(sorted(unknown))))
    key = taint.get("key")
    _check_key(key, "taint")
    value = taint.get("value")
    value = "" if value is None else value
    if isinstance(value, bool):
        value = "true" if value else "false"
    _check_value(value, "taint", key)
    effect = taint.get("effect")
    if effect not in TAINT_EFFECTS:
        raise NodeLabelError("taint %s effect %r must be one of %s" % (key, effect, ", ".join(TAINT_EFFECTS)))
    return {"key": key, "value": value, "effect": effect}


def normalise_taints(taints):
    """Validate a list of taints; two taints with the same key and effect are an error (Kubernetes rejects them)."""
    if taints is None:
        return []
    if not isinstance(taints, list):
        raise NodeLabelError("taints must be a list, got %s" % type(taints).__name__)
    result = []
    seen = set()
    for taint in taints:
        parsed = parse_taint(taint)
        ident = (parsed["key"], parsed["effect"])
        if ident in seen:
            raise NodeLabelError("taint %s:%s is given twice" % ident)
        seen.add(ident)
        result.append(parsed)
    return result


def taint_string(taint):
    """``key=value:Effect`` (the AKS and kubectl spelling)."""
    value = taint.get("value") or ""
    return "%s%s:%s" % (taint["key"], "=" + value if value else "", taint["effect"])


def read_record(node, annotation=ANNOTATION):
    """What the role recorded on ``node`` as added by it: ``{'labels': {key: {value, previous}}, 'taints': [...]}``."""
    raw = ((node.get("metadata") or {}).get("annotations") or {}).get(annotation)
    record = {"labels": {}, "taints": []}
    if not raw:
        return record
    try:
        data = json.loads(raw)
    except ValueError:
        raise NodeLabelError("annotation %s on node %s is not valid JSON" % (annotation, node.get("metadata", {}).get("name")))
    if not isinstance(data, dict):
        raise NodeLabelError("annotation %s on node %s is not a JSON object" % (annotation, node.get("metadata", {}).get("name")))
    for key, entry in (data.get("labels") or {}).items():
        if isinstance(entry, dict) and "value" in entry:
            record["labels"][key] = {"value": entry["value"], "previous": entry.get("previous")}
    for entry in data.get("taints") or []:
        if isinstance(entry, dict) and entry.get("key") and entry.get("effect"):
            record["taints"].append({"key": entry["key"], "value": entry.get("value") or "", "effect": entry["effect"],
                                     "previous": entry.get("previous")})
    return record


def _dump_record(record):
    if not record["labels"] and not record["taints"]:
        return None
    taints = sorted(record["taints"], key=lambda t: (t["key"], t["effect"]))
    return json.dumps({"labels": record["labels"], "taints": taints}, sort_keys=True, separators=(",", ":"))


def _value(taint):
    return taint.get("value") or ""


def _find(taints, key, effect):
    for index, taint in enumerate(taints):
        if taint.get("key") == key and taint.get("effect") == effect:
            return index
    return None


def _make_taint(key, value, effect):
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def _canon(taints):
    return [(t.get("key"), _value(t), t.get("effect")) for t in taints]


def plan_node(node, labels=None, taints=None, state="present", annotation=ANNOTATION):
    """Plan the change of one node.

    Returns a dict with ``name``, ``changed``, ``patch`` (a JSON merge patch carrying the complete taint list, or
    ``None``), the label and taint lists before and after, and what was added, changed or removed.
    """
    if state not in ("present", "absent"):
        raise NodeLabelError("state must be present or absent, got %r" % (state,))
    if not isinstance(node, dict) or not (node.get("metadata") or {}).get("name"):
        raise NodeLabelError("each node must be a Node object with metadata.name")
    wanted_labels = normalise_labels(labels) if state == "present" else {}
    wanted_taints = normalise_taints(taints) if state == "present" else []
    name = node["metadata"]["name"]
    before_labels = dict(node["metadata"].get("labels") or {})
    before_taints = [dict(t) for t in ((node.get("spec") or {}).get("taints") or [])]
    record = read_record(node, annotation)
    after_labels = dict(before_labels)
    after_taints = [dict(t) for t in before_taints]
    new_record = {"labels": {}, "taints": []}
    report = {"labels_set": {}, "labels_removed": [], "taints_added": [], "taints_removed": []}

    # Release what the role recorded but no longer wants: put back the value it replaced, only where the value is
    # still the role's own (a label or taint someone changed since is theirs now).
    for key, entry in record["labels"].items():
        if key in wanted_labels:
            continue
        if after_labels.get(key) == entry["value"]:
            if entry.get("previous") is None:
                del after_labels[key]
                report["labels_removed"].append(key)
            else:
                after_labels[key] = entry["previous"]
                report["labels_set"][key] = entry["previous"]
    wanted_ids = set((t["key"], t["effect"]) for t in wanted_taints)
    for entry in record["taints"]:
        if (entry["key"], entry["effect"]) in wanted_ids:
            continue
        index = _find(after_taints, entry["key"], entry["effect"])
        if index is None or _value(after_taints[index]) != entry["value"]:
            continue
        if entry.get("previous") is None:
            del after_taints[index]
            report["taints_removed"].append(taint_string(entry))
        else:
            after_taints[index] = _make_taint(entry["key"], entry["previous"], entry["effect"])
            report["taints_added"].append(taint_string(after_taints[index]))

    # Apply what is wanted, recording only what the role adds or overwrites.
    for key, value in wanted_labels.items():
        current = after_labels.get(key)
        if key in record["labels"]:
            new_record["labels"][key] = {"value": value, "previous": record["labels"][key].get("previous")}
        elif current != value:
            new_record["labels"][key] = {"value": value, "previous": current}
        if current != value:
            after_labels[key] = value
            report["labels_set"][key] = value
    recorded_taints = dict(((t["key"], t["effect"]), t) for t in record["taints"])
    for taint in wanted_taints:
        ident = (taint["key"], taint["effect"])
        index = _find(after_taints, taint["key"], taint["effect"])
        current = None if index is None else _value(after_taints[index])
        if ident in recorded_taints:
            new_record["taints"].append(dict(taint, previous=recorded_taints[ident].get("previous")))
        elif current != taint["value"]:
            new_record["taints"].append(dict(taint, previous=current))
        if index is None:
            after_taints.append(_make_taint(taint["key"], taint["value"], taint["effect"]))
            report["taints_added"].append(taint_string(taint))
        elif current != taint["value"]:
            after_taints[index] = _make_taint(taint["key"], taint["value"], taint["effect"])
            report["taints_added"].append(taint_string(taint))

    patch = {}
    label_patch = dict((key, after_labels.get(key)) for key in set(before_labels) | set(after_labels)
                       if before_labels.get(key) != after_labels.get(key))
    if label_patch:
        patch.setdefault("metadata", {})["labels"] = label_patch
    old_raw = ((node["metadata"].get("annotations") or {}).get(annotation))
    new_raw = _dump_record(new_record)
    if (json.loads(old_raw) if old_raw else None) != (json.loads(new_raw) if new_raw else None):
        patch.setdefault("metadata", {})["annotations"] = {annotation: new_raw}
    if _canon(after_taints) != _canon(before_taints):
        patch["spec"] = {"taints": after_taints}
    return {
        "name": name,
        "changed": bool(patch),
        "patch": patch or None,
        "before": {"labels": before_labels, "taints": before_taints},
        "after": {"labels": after_labels, "taints": after_taints},
        "labels_set": report["labels_set"],
        "labels_removed": sorted(report["labels_removed"]),
        "taints_added": report["taints_added"],
        "taints_removed": report["taints_removed"],
        "managed": new_record,
    }


def plan_nodes(nodes, labels=None, taints=None, state="present", annotation=ANNOTATION):
    """``plan_node`` for each node, sorted by name."""
    if not isinstance(nodes, list):
        raise NodeLabelError("the input must be a list of Node objects")
    plans = [plan_node(node, labels, taints, state, annotation) for node in nodes]
    return sorted(plans, key=lambda plan: plan["name"])
