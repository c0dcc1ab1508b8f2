# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Down-level real upstream CRDs so that the testbed's v1.20 API server accepts them.

The testbed serves the CRDs of the real charts (read from the upstream chart data, never copied
into the repository). Some use OpenAPI schema features that kube-apiserver v1.20 cannot hold. This
module removes exactly those, mechanically, and counts every removal per CRD, so the report says
what the testbed does not check that a current cluster would:

``x-kubernetes-validations``
    CEL validation rules (alpha in 1.23, GA in 1.29). v1.20 rejects the unknown field.
``empty-string-default``
    ``default: ""`` on a string. v1.20 reads the empty default back as ``null`` and refuses the CRD
    (``...default: Invalid value: "null": in body must be of type string``). The field itself, its
    type and every other constraint stay; only the default value is dropped.
``selectableFields``
    per-version field selectors (1.30+).

Everything else (types, enums, patterns, required, ``x-kubernetes-int-or-string``,
``x-kubernetes-list-type``/``-map-keys``, ``x-kubernetes-map-type``, ``x-kubernetes-preserve-unknown-fields``)
is kept: v1.20 understands it, so objects are validated against the upstream schema.

Usable as a library (``downlevel``, ``load_crds``, ``UPSTREAM_CRD_SOURCES``) and from the command line:

    python crd_downlevel.py [--markdown] [UPSTREAM_DIR]    print the report as JSON (or a Markdown table)
"""

from __future__ import annotations

import copy
import glob
import json
import os
import sys

# Where the served CRDs come from, relative to the upstream chart data directory.
UPSTREAM_CRD_SOURCES = (
    "gpu-operator/crds",
    "gpu-operator/charts/node-feature-discovery/crds",
    "kserve/kserve-crd/crds",
    "prometheus-operator-crds",
)

# Schema keywords (inside openAPIV3Schema) that v1.20 cannot hold, removed wherever they appear.
UNSUPPORTED_SCHEMA_KEYS = ("x-kubernetes-validations",)
# Keys of spec.versions[] that v1.20 does not know.
UNSUPPORTED_VERSION_KEYS = ("selectableFields",)
EMPTY_DEFAULT = "empty-string-default"
# Schema keywords whose value is a map of property names to schemas, or a schema, or a list of schemas.
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "additionalItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def _walk(schema, removed):
    """Remove, in place, what v1.20 cannot hold from one schema node and everything below it."""
    if not isinstance(schema, dict):
        return
    for key in UNSUPPORTED_SCHEMA_KEYS:
        if key in schema:
            del schema[key]
            removed[key] = removed.get(key, 0) + 1
    if schema.get("default") == "" and schema.get("type") == "string":
        del schema["default"]
        removed[EMPTY_DEFAULT] = removed.get(EMPTY_DEFAULT, 0) + 1
    for key in _SCHEMA_MAPS:
        for sub in (schema.get(key) or {}).values():
            _walk(sub, removed)
    for key in _SCHEMA_ONE:
        if isinstance(schema.get(key), dict):
            _walk(schema[key], removed)
    for key in _SCHEMA_LISTS:
        for sub in schema.get(key) or []:
            _walk(sub, removed)


def downlevel(crd):
    """Return ``(a down-levelled copy of crd, {what: count removed})``; the input is not changed."""
    if crd.get("kind") != "CustomResourceDefinition" or crd.get("apiVersion") != "apiextensions.k8s.io/v1":
        raise ValueError("not an apiextensions.k8s.io/v1 CustomResourceDefinition: %s/%s"
                         % (crd.get("apiVersion"), crd.get("kind")))
    out = copy.deepcopy(crd)
    removed = {}
    for version in out["spec"].get("versions") or []:
        for key in UNSUPPORTED_VERSION_KEYS:
            if key in version:
                del version[key]
                removed[key] = removed.get(key, 0) + 1
        _walk(((version.get("schema") or {}).get("openAPIV3Schema")), removed)
    return out, removed


def load_crds(upstream):
    """Every CRD document under the upstream sources, as ``[(source file relative to upstream, crd)]``.

    Raises FileNotFoundError naming the directory when the data (or one source) is missing.
    """
    import yaml  # pylint: disable=import-outside-toplevel

    if not os.path.isdir(upstream):
        raise FileNotFoundError("upstream chart data not found at %s (set MLOPS_UPSTREAM_DATA to the directory "
                                "that holds the real charts' data files)" % upstream)
    found = []
    for source in UPSTREAM_CRD_SOURCES:
        directory = os.path.join(upstream, source)
        files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
        if not files:
            raise FileNotFoundError("no CRDs in %s: the upstream chart data is incomplete" % directory)
        for file_path in files:
            with open(file_path, encoding="utf-8") as handle:
                for doc in yaml.safe_load_all(handle):
                    if doc and doc.get("kind") == "CustomResourceDefinition":
                        found.append((os.path.relpath(file_path, upstream), doc))
    return found


def report(upstream):
    """``(down-levelled CRDs, report)``; the report maps each CRD name to its source and removals."""
    crds = []
    rows = {}
    for source, crd in load_crds(upstream):
        lowered, removed = downlevel(crd)
        crds.append(lowered)
        rows[crd["metadata"]["name"]] = {"source": source, "removed": removed, "total": sum(removed.values())}
    return crds, rows


def summary(rows):
    """One line per CRD, for people."""
    lines = []
    for name in sorted(rows):
        removed = rows[name]["removed"]
        what = ", ".join("%s %d" % (key, removed[key]) for key in sorted(removed)) or "nothing removed"
        lines.append("%-45s %s" % (name, what))
    return lines


REPORT_COLUMNS = ("x-kubernetes-validations", EMPTY_DEFAULT) + UNSUPPORTED_VERSION_KEYS


def markdown_rows(rows):
    """The report as Markdown table rows (the table in docs/testbed.md), one per CRD."""
    lines = ["| CRD | upstream file | " + " | ".join("`%s`" % c for c in REPORT_COLUMNS) + " |",
             "| --- | --- | " + " | ".join("---:" for _c in REPORT_COLUMNS) + " |"]
    for name in sorted(rows):
        removed = rows[name]["removed"]
        lines.append("| `%s` | `%s` | %s |" % (name, rows[name]["source"], " | ".join(str(removed.get(c, 0)) for c in REPORT_COLUMNS)))
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    markdown = "--markdown" in argv
    argv = [arg for arg in argv if arg != "--markdown"]
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.environ.get("MLOPS_UPSTREAM_DATA", os.path.join(here, "..", "..", "..", "shared", "upstream-charts"))
    upstream = os.path.abspath(argv[0] if argv else default)
    _crds, rows = report(upstream)
    if markdown:
        sys.stdout.write("\n".join(markdown_rows(rows)) + "\n")
        return 0
    json.dump(rows, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
