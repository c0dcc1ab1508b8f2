# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery of a Helm 3 release that an interrupted run left pending.

Helm 3 keeps each revision of a release in a Secret ``sh.helm.release.v1.<release>.v<N>`` in the release
namespace, labelled ``owner=helm,name=<release>,status=<status>,version=<N>``. Its ``data.release`` is the
release, JSON, gzipped and base64-encoded by Helm (and base64-encoded again by the API, as every Secret value).
A run killed during ``helm install``/``upgrade``/``rollback`` leaves the newest revision ``pending-install``,
``pending-upgrade`` or ``pending-rollback``, and Helm then refuses every later operation ("another operation
(install/upgrade/rollback) is in progress"). An uninstall that stopped midway (also the one ``--atomic`` runs to
roll back a failed first install, when the API fails it too) leaves the newest revision ``uninstalling``, and
``helm upgrade --install`` then fails with "has no deployed releases". Both are "unsettled" here.

The functions here are pure: they read Secret objects as returned by the API (dicts), decide, and word the
message; :func:`run_recover` does the API requests through a transport (``request(method, path, query, body)``).
Only ``info.status``, ``info.last_deployed`` and ``version`` of a decoded release are ever read; nothing else
of it (its values hold secrets) is kept or returned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import calendar
import gzip
import json
import re
import time

from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import RetryPolicy, call_with_retry
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError, list_all

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
# Statuses that block the next install or upgrade: the pending ones, and an uninstall that stopped midway.
UNSETTLED = PENDING + ("uninstalling",)
# Every status Helm 3 writes; anything else is reported as it is and treated as not pending.
KNOWN_STATUSES = ("unknown", "deployed", "uninstalled", "superseded", "failed", "uninstalling") + PENDING
SECRET_PREFIX = "sh.helm.release.v1."
GZIP_MAGIC = b"\x1f\x8b\x08"

_TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


class Revision(object):
    """One revision record of a release: what is needed to decide, nothing of the release's content."""

    __slots__ = ("name", "uid", "resource_version", "version", "status", "created", "last_deployed")

    def __init__(self, name, version, status, uid=None, resource_version=None, created=None, last_deployed=None):
        self.name = name
        self.uid = uid
        self.resource_version = resource_version
        self.version = version
        self.status = status
        self.created = created
        self.last_deployed = last_deployed

    @property
    def pending(self):
        return self.status in PENDING

    @property
    def unsettled(self):
        return self.status in UNSETTLED

    def started(self):
        """When the revision's operation began (epoch seconds): the later of the record's creation and
        ``info.last_deployed``, None when neither is known."""
        known = [t for t in (self.created, self.last_deployed) if t is not None]
        return max(known) if known else None

    def as_dict(self):
        return {"revision": self.version, "status": self.status, "secret": self.name}

    def __repr__(self):
        return "Revision(%r, %r, %r)" % (self.name, self.version, self.status)


def parse_time(text):
    """Epoch seconds of an RFC 3339 time (``2026-01-02T03:04:05Z``, Helm's ``...05.123456789+01:00``); None if
    ``text`` is empty or not such a time."""
    if not text or not isinstance(text, str):
        return None
    match = _TIME_RE.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = float(match.group(7)) if match.group(7) else 0.0
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) + fraction
    zone = match.group(8)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds


def decode_release(data):
    """``{"status", "version", "last_deployed"}`` of a Helm release record.

    ``data`` is the Secret's ``data.release`` as the API returns it (base64 of Helm's base64 of the gzipped
    JSON; Helm writes plain JSON when it did not compress). Raises ValueError when it cannot be read.
    Everything else in the release is dropped here.
    """
    if not data:
        raise ValueError("the record has no release data")
    try:
        helm_encoded = base64.b64decode(data)
        raw = base64.b64decode(helm_encoded)
    except (TypeError, ValueError) as err:
        raise ValueError("the release data is not base64: %s" % err)
    if raw[:3] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError("the release data is not valid gzip: %s" % err)
    try:
        release = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError("the release data is not JSON: %s" % type(err).__name__)
    if not isinstance(release, dict):
        raise ValueError("the release data is not a JSON object")
    info = release.get("info") if isinstance(release.get("info"), dict) else {}
    version = release.get("version")
    return {
        "status": info.get("status") if isinstance(info.get("status"), str) else None,
        "version": version if isinstance(version, int) and not isinstance(version, bool) else None,
        "last_deployed": parse_time(info.get("last_deployed")),
    }


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def revision_from_secret(secret):
    """A :class:`Revision` from a release Secret; None for a Secret that is no Helm release record.

    The decoded release decides status and version (that is what Helm itself reads); the labels are the
    fallback when the data cannot be decoded.
    """
    meta = secret.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = meta.get("name") or ""
    if labels.get("owner") != "helm" or not name.startswith(SECRET_PREFIX):
        return None
    try:
        decoded = decode_release((secret.get("data") or {}).get("release"))
    except ValueError:
        decoded = {"status": None, "version": None, "last_deployed": None}
    version = decoded["version"] if decoded["version"] is not None else _int(labels.get("version"))
    if version is None:
        match = re.search(r"\.v(\d+)$", name)
        version = int(match.group(1)) if match else None
    if version is None:
        return None
    status = decoded["status"] or labels.get("status") or "unknown"
    return Revision(name, version, status, uid=meta.get("uid"), resource_version=meta.get("resourceVersion"),
                    created=parse_time(meta.get("creationTimestamp")), last_deployed=decoded["last_deployed"])


def revisions_from_secrets(secrets):
    """Every revision record among ``secrets``, newest (highest revision) first."""
    found = [r for r in (revision_from_secret(s) for s in secrets or []) if r is not None]
    return sorted(found, key=lambda r: r.version, reverse=True)


def newest(revisions):
    """The revision with the highest number, None for none."""
    return max(revisions, key=lambda r: r.version) if revisions else None


class Plan(object):
    """What to do with a release: ``action`` is ``none``, ``recover`` (delete ``remove``) or ``refuse``."""

    def __init__(self, action, release, namespace, revision=None, previous_status=None, remove=None,
                 remaining=None, age=None):
        self.action = action
        self.release = release
        self.namespace = namespace
        self.revision = revision
        self.previous_status = previous_status
        self.remove = list(remove or [])
        self.remaining = remaining
        self.age = age


def plan_recovery(release, namespace, revisions, now, stale_after):
    """Decide what to do with the revision records of ``release``.

    * no record, or the newest is settled (not pending, not ``uninstalling``): ``none``;
    * the newest is unsettled, but began less than ``stale_after`` seconds before ``now`` (or when it began is
      unknown and ``stale_after`` > 0): ``refuse`` (another run may still be working on it);
    * otherwise ``recover``: remove the newest record and every unsettled record right below it, so that Helm
      sees the newest settled revision (``remaining``) again, or no revision at all.
    """
    ordered = sorted(revisions or [], key=lambda r: r.version, reverse=True)
    top = ordered[0] if ordered else None
    if top is None or not top.unsettled:
        return Plan("none", release, namespace, revision=top.version if top else None,
                    previous_status=top.status if top else None, remaining=top)
    started = top.started()
    age = None if started is None else max(0.0, now - started)
    fresh = (age is None and stale_after > 0) or (age is not None and age < stale_after)
    if fresh:
        return Plan("refuse", release, namespace, revision=top.version, previous_status=top.status, age=age)
    remove = []
    for rev in ordered:
        if not rev.unsettled:
            break
        remove.append(rev)
    remaining = ordered[len(remove)] if len(remove) < len(ordered) else None
    return Plan("recover", release, namespace, revision=top.version, previous_status=top.status, remove=remove,
                remaining=remaining, age=age)


def _removed_text(plan):
    if len(plan.remove) == 1:
        return "that revision's record"
    return "the records of revisions %s" % ", ".join(
        "%d (%s)" % (r.version, r.status) for r in plan.remove)


def plan_message(plan, stale_after, check_mode=False):
    """The message that says what was found and what was (or, in check mode, would be) done."""
    where = "%s/%s" % (plan.namespace, plan.release)
    if plan.action == "none":
        if plan.revision is None:
            return "release %s has no revision record; nothing to recover" % where
        return "release %s is %s at revision %d; nothing to recover" % (where, plan.previous_status, plan.revision)
    if plan.action == "refuse":
        since = "for an unknown time" if plan.age is None else "for %ds" % int(plan.age)
        text = ("release %s is %s at revision %d %s, less than stale_after=%ss: another run may still be working "
                "on it, so it was left alone. Let that run finish, or stop it and run again once the revision is "
                "older than stale_after (or with a lower stale_after)")
        return text % (where, plan.previous_status, plan.revision, since, stale_after)
    found = "release %s was left %s at revision %d by an interrupted run" % (
        where, plan.previous_status, plan.revision)
    removed = _removed_text(plan)
    if check_mode:
        done = "would remove %s" % removed
    else:
        done = "removed %s" % removed
    if plan.remaining is not None:
        verb = "would continue" if check_mode else "continues"
        nxt = "Helm %s from revision %d (%s)" % (verb, plan.remaining.version, plan.remaining.status)
    else:
        nxt = ("no earlier revision is left, so the next install %s the objects that run created (they carry the "
               "release's meta.helm.sh/release-name and release-namespace annotations)"
               % ("would adopt" if check_mode else "adopts"))
    return "%s; %s, %s" % (found, done, nxt)


def plan_diff(plan, revisions):
    """``{"before", "after"}`` of the release's revision list (revision numbers and statuses only)."""
    ordered = sorted(revisions or [], key=lambda r: r.version)
    gone = set(r.version for r in plan.remove)
    header = "release %s/%s" % (plan.namespace, plan.release)

    def render(revs):
        return {"revisions": [r.as_dict() for r in revs]}

    return {"before": render(ordered), "after": render([r for r in ordered if r.version not in gone]),
            "before_header": header, "after_header": header}


def label_selector(release):
    return "owner=helm,name=%s" % release


def secrets_path(namespace):
    return "/api/v1/namespaces/%s/secrets" % namespace


def validate_params(params):
    """An error message for invalid parameters, else None."""
    if not params.get("release_name"):
        return "release_name must not be empty"
    if not params.get("release_namespace"):
        return "release_namespace must not be empty"
    if params.get("stale_after") is None or params["stale_after"] < 0:
        return "stale_after must be 0 or more seconds, got %r" % (params.get("stale_after"),)
    return None


def _delete(transport, namespace, revision, policy, sleep):
    """Delete one record, only if it is still the object that was read (uid and resourceVersion).

    Transient errors are retried; a 404 on a retry means an earlier attempt went through. A 409 means the record
    changed since it was read: a run is still writing to it.
    """
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {}}
    if revision.uid:
        body["preconditions"]["uid"] = revision.uid
    if revision.resource_version:
        body["preconditions"]["resourceVersion"] = revision.resource_version
    attempts = [0]

    def send():
        attempts[0] += 1
        try:
            return transport.request("DELETE", "%s/%s" % (secrets_path(namespace), revision.name), body=body)
        except ApiError as err:
            if err.status == 404 and attempts[0] > 1:
                return {}
            raise

    return call_with_retry(send, policy, sleep=sleep)


def run_recover(transport, params, check_mode=False, now=None, policy=None, sleep=time.sleep):
    """Read the release's records, decide, and (unless ``check_mode``) delete what the plan removes.

    Returns the module result (without ``failed``): ``changed``, ``recovered``, ``previous_status``,
    ``revision``, ``removed`` (the deleted records), ``revisions`` (before), ``deployed`` (whether a
    ``deployed`` revision is left once the plan is carried out, so the next Helm run is an upgrade of a working
    release rather than an install), ``msg``, ``diff``, and ``refused`` when an unsettled revision was too recent
    to touch.
    """
    release = params["release_name"]
    namespace = params["release_namespace"]
    stale_after = params["stale_after"]
    secrets, dummy = list_all(transport, secrets_path(namespace), {"labelSelector": label_selector(release)})
    revisions = revisions_from_secrets(secrets)
    now = time.time() if now is None else now
    plan = plan_recovery(release, namespace, revisions, now, stale_after)
    result = {
        "changed": False,
        "recovered": False,
        "refused": plan.action == "refuse",
        "previous_status": plan.previous_status,
        "revision": plan.revision,
        "revisions": [r.as_dict() for r in revisions],
        "removed": [],
        "deployed": any(r.status == "deployed" for r in revisions
                        if r.version not in set(x.version for x in plan.remove)),
    }
    if plan.action == "recover":
        if not check_mode:
            for rev in plan.remove:
                try:
                    _delete(transport, namespace, rev, policy or RetryPolicy(), sleep)
                except ApiError as err:
                    if err.status == 409:
                        err = ApiError(409, "revision record %s changed while it was being removed: another run is "
                                            "still working on release %s/%s; nothing more was removed"
                                       % (rev.name, namespace, release))
                    err.changed = bool(result["removed"])
                    raise err
                result["removed"].append(rev.as_dict())
        else:
            result["removed"] = [r.as_dict() for r in plan.remove]
        result["changed"] = True
        result["recovered"] = not check_mode
        result["diff"] = plan_diff(plan, revisions)
    result["msg"] = plan_message(plan, stale_after, check_mode=check_mode)
    return result
