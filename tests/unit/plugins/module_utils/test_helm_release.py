# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of plugins/module_utils/helm_release.py: decoding, newest revision, staleness, messages, deletes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json

import pytest

from ansible_collections.mlops.platform.plugins.module_utils import helm_release as hr
from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import RetryPolicy
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError

NOW = 1767323045.0  # 2026-01-02T03:04:05Z
SECRET_VALUE = "canary-oauth-secret-3f9a"


def encode_release(status, version, last_deployed="2026-01-02T03:04:05.5+00:00", compress=True):
    release = {"name": "hub", "namespace": "ns", "version": version,
               "info": {"status": status, "last_deployed": last_deployed},
               "config": {"hub": {"config": {"GenericOAuthenticator": {"client_secret": SECRET_VALUE}}}}}
    raw = json.dumps(release).encode("utf-8")
    if compress:
        raw = gzip.compress(raw)
    return base64.b64encode(base64.b64encode(raw)).decode("ascii")


def secret(version, status, created="2026-01-02T03:04:05Z", release="hub", labels=None, data=True, **kwargs):
    meta_labels = {"owner": "helm", "name": release, "status": status, "version": str(version)}
    meta_labels.update(labels or {})
    body = {"metadata": {"name": "sh.helm.release.v1.%s.v%d" % (release, version), "namespace": "ns",
                         "uid": "uid-%d" % version, "resourceVersion": str(100 + version),
                         "creationTimestamp": created, "labels": meta_labels},
            "type": "helm.sh/release.v1"}
    if data:
        body["data"] = {"release": encode_release(status, version, **kwargs)}
    return body


def revs(*pairs, **kwargs):
    return hr.revisions_from_secrets([secret(v, s, **kwargs) for v, s in pairs])


# --------------------------------------------------------------------------- decoding and parsing


def test_parse_time_forms():
    assert hr.parse_time("2026-01-02T03:04:05Z") == NOW
    assert hr.parse_time("2026-01-02T04:04:05+01:00") == NOW
    assert hr.parse_time("2026-01-02T02:04:05-0100") == NOW
    assert hr.parse_time("2026-01-02T03:04:05.123456789Z") == pytest.approx(NOW + 0.123456789)
    assert hr.parse_time("") is None
    assert hr.parse_time(None) is None
    assert hr.parse_time("yesterday") is None


@pytest.mark.parametrize("compress", [True, False])
def test_decode_reads_status_version_and_time_only(compress):
    decoded = hr.decode_release(encode_release("pending-upgrade", 3, compress=compress))
    assert decoded == {"status": "pending-upgrade", "version": 3, "last_deployed": NOW + 0.5}
    assert SECRET_VALUE not in repr(decoded)


@pytest.mark.parametrize("data", [None, "", "!!!notbase64", base64.b64encode(b"notbase64 either").decode(),
                                  base64.b64encode(base64.b64encode(b"\x1f\x8b\x08broken")).decode(),
                                  base64.b64encode(base64.b64encode(b"[1, 2]")).decode()])
def test_decode_refuses_what_it_cannot_read(data):
    with pytest.raises(ValueError):
        hr.decode_release(data)


def test_revision_from_secret_prefers_the_decoded_release():
    # Labels say deployed, the release says pending-upgrade: Helm reads the release, so do we.
    sec = secret(2, "pending-upgrade")
    sec["metadata"]["labels"]["status"] = "deployed"
    rev = hr.revision_from_secret(sec)
    assert (rev.version, rev.status, rev.uid, rev.resource_version) == (2, "pending-upgrade", "uid-2", "102")
    assert rev.created == NOW and rev.last_deployed == NOW + 0.5 and rev.started() == NOW + 0.5


def test_revision_from_secret_falls_back_to_labels_then_name():
    rev = hr.revision_from_secret(secret(4, "pending-install", data=False))
    assert (rev.version, rev.status, rev.last_deployed, rev.started()) == (4, "pending-install", None, NOW)
    sec = secret(5, "deployed", data=False)
    del sec["metadata"]["labels"]["version"]
    assert hr.revision_from_secret(sec).version == 5


def test_foreign_secrets_are_ignored():
    assert hr.revision_from_secret(secret(1, "deployed", labels={"owner": "someone"})) is None
    other = secret(1, "deployed")
    other["metadata"]["name"] = "hub-oauth"
    assert hr.revision_from_secret(other) is None
    assert hr.revisions_from_secrets([other, secret(1, "deployed", labels={"owner": "someone"})]) == []


def test_newest_is_the_highest_revision_number_not_the_order_or_name():
    # v10 sorts before v9 as text; the number decides.
    found = revs((9, "superseded"), (10, "pending-upgrade"), (2, "superseded"))
    assert [r.version for r in found] == [10, 9, 2]
    assert hr.newest(found).version == 10
    assert hr.newest([]) is None


# --------------------------------------------------------------------------- decisions


@pytest.mark.parametrize("status", ["deployed", "failed", "superseded", "uninstalled", "unknown", "something-new"])
def test_settled_statuses_need_nothing(status):
    plan = hr.plan_recovery("hub", "ns", revs((1, "superseded"), (2, status)), NOW, 0)
    assert (plan.action, plan.revision, plan.previous_status, plan.remove) == ("none", 2, status, [])
    assert hr.plan_message(plan, 0) == "release ns/hub is %s at revision 2; nothing to recover" % status


def test_an_uninstall_that_stopped_midway_is_removed_so_the_next_install_adopts():
    # --atomic rolls a failed first install back with an uninstall; when the API fails that too, the only
    # record stays "uninstalling" and `helm upgrade --install` answers "has no deployed releases".
    plan = hr.plan_recovery("hub", "ns", revs((1, "uninstalling")), NOW + 60, 0)
    assert (plan.action, [r.version for r in plan.remove], plan.remaining) == ("recover", [1], None)
    assert hr.plan_message(plan, 0).startswith("release ns/hub was left uninstalling at revision 1 by an interrupted run")
    plan = hr.plan_recovery("hub", "ns", revs((1, "superseded"), (2, "uninstalling")), NOW + 60, 0)
    assert [r.version for r in plan.remove] == [2]
    assert hr.plan_message(plan, 0).endswith("Helm continues from revision 1 (superseded)")


def test_no_release_needs_nothing():
    plan = hr.plan_recovery("hub", "ns", [], NOW, 0)
    assert (plan.action, plan.revision, plan.previous_status) == ("none", None, None)
    assert hr.plan_message(plan, 0) == "release ns/hub has no revision record; nothing to recover"


@pytest.mark.parametrize("status", ["pending-upgrade", "pending-rollback"])
def test_pending_upgrade_or_rollback_removes_that_revision_only(status):
    plan = hr.plan_recovery("hub", "ns", revs((1, "superseded"), (2, "deployed"), (3, status)), NOW + 60, 0)
    assert plan.action == "recover"
    assert [r.version for r in plan.remove] == [3]
    assert plan.remaining.version == 2
    assert hr.plan_message(plan, 0) == (
        "release ns/hub was left %s at revision 3 by an interrupted run; removed that revision's record, "
        "Helm continues from revision 2 (deployed)" % status)
    assert hr.plan_message(plan, 0, check_mode=True) == (
        "release ns/hub was left %s at revision 3 by an interrupted run; would remove that revision's record, "
        "Helm would continue from revision 2 (deployed)" % status)


def test_pending_install_of_the_first_revision_removes_it_and_relies_on_adoption():
    plan = hr.plan_recovery("hub", "ns", revs((1, "pending-install")), NOW + 60, 0)
    assert (plan.action, [r.version for r in plan.remove], plan.remaining) == ("recover", [1], None)
    msg = hr.plan_message(plan, 0)
    assert msg.startswith("release ns/hub was left pending-install at revision 1 by an interrupted run; "
                          "removed that revision's record, no earlier revision is left, so the next install adopts")
    assert "meta.helm.sh/release-name" in msg


def test_pending_install_after_an_uninstall_kept_in_history():
    plan = hr.plan_recovery("hub", "ns", revs((1, "uninstalled"), (2, "pending-install")), NOW + 60, 0)
    assert [r.version for r in plan.remove] == [2]
    assert hr.plan_message(plan, 0).endswith("Helm continues from revision 1 (uninstalled)")


def test_a_run_of_pending_revisions_is_removed_down_to_the_settled_one():
    plan = hr.plan_recovery("hub", "ns", revs((1, "deployed"), (2, "pending-upgrade"), (3, "pending-rollback")),
                            NOW + 60, 0)
    assert [r.version for r in plan.remove] == [3, 2]
    assert hr.plan_message(plan, 0) == (
        "release ns/hub was left pending-rollback at revision 3 by an interrupted run; removed the records of "
        "revisions 3 (pending-rollback), 2 (pending-upgrade), Helm continues from revision 1 (deployed)")


def test_a_pending_revision_below_a_settled_one_is_left_alone():
    plan = hr.plan_recovery("hub", "ns", revs((1, "pending-install"), (2, "deployed")), NOW, 0)
    assert plan.action == "none"


# --------------------------------------------------------------------------- staleness


def test_staleness_boundaries():
    found = revs((1, "deployed"), (2, "pending-upgrade"))  # started NOW + 0.5 (last_deployed is later)
    assert hr.plan_recovery("hub", "ns", found, NOW + 0.5 + 299, 300).action == "refuse"
    assert hr.plan_recovery("hub", "ns", found, NOW + 0.5 + 300, 300).action == "recover"
    assert hr.plan_recovery("hub", "ns", found, NOW, 0).action == "recover"
    # A clock behind the record's time counts as age 0, not negative.
    assert hr.plan_recovery("hub", "ns", found, NOW - 1000, 0).action == "recover"
    assert hr.plan_recovery("hub", "ns", found, NOW - 1000, 1).action == "refuse"


def test_unknown_age_is_stale_only_when_stale_after_is_zero():
    sec = secret(1, "pending-install", data=False)
    del sec["metadata"]["creationTimestamp"]
    found = hr.revisions_from_secrets([sec])
    assert found[0].started() is None
    assert hr.plan_recovery("hub", "ns", found, NOW, 0).action == "recover"
    plan = hr.plan_recovery("hub", "ns", found, NOW, 60)
    assert plan.action == "refuse"
    assert "for an unknown time" in hr.plan_message(plan, 60)


def test_refusal_message_explains_another_run_may_be_active():
    plan = hr.plan_recovery("hub", "ns", revs((1, "deployed"), (2, "pending-upgrade")), NOW + 42.9, 3600)
    assert (plan.action, plan.revision, plan.previous_status, plan.remove) == ("refuse", 2, "pending-upgrade", [])
    assert hr.plan_message(plan, 3600) == (
        "release ns/hub is pending-upgrade at revision 2 for 42s, less than stale_after=3600s: another run may "
        "still be working on it, so it was left alone. Let that run finish, or stop it and run again once the "
        "revision is older than stale_after (or with a lower stale_after)")


# --------------------------------------------------------------------------- diff and params


def test_diff_lists_revision_numbers_and_statuses_only():
    found = revs((1, "deployed"), (2, "pending-upgrade"))
    plan = hr.plan_recovery("hub", "ns", found, NOW + 60, 0)
    diff = hr.plan_diff(plan, found)
    assert [r["revision"] for r in diff["before"]["revisions"]] == [1, 2]
    assert diff["after"]["revisions"] == [{"revision": 1, "status": "deployed", "secret": "sh.helm.release.v1.hub.v1"}]
    assert SECRET_VALUE not in json.dumps(diff)


@pytest.mark.parametrize("params, error", [
    ({"release_name": "", "release_namespace": "ns", "stale_after": 0}, "release_name"),
    ({"release_name": "hub", "release_namespace": "", "stale_after": 0}, "release_namespace"),
    ({"release_name": "hub", "release_namespace": "ns", "stale_after": -1}, "stale_after"),
])
def test_validate_params(params, error):
    assert error in hr.validate_params(params)
    assert hr.validate_params({"release_name": "hub", "release_namespace": "ns", "stale_after": 0}) is None


# --------------------------------------------------------------------------- run against a fake API


class FakeApi(object):
    """Secrets of one namespace; DELETE honours uid/resourceVersion preconditions; scripted failures."""

    def __init__(self, secrets, failures=None):
        self.secrets = {s["metadata"]["name"]: s for s in secrets}
        self.failures = list(failures or [])
        self.calls = []

    def request(self, method, path, query=None, body=None):
        self.calls.append((method, path, dict(query or {}), body))
        if method == "GET":
            assert path == "/api/v1/namespaces/ns/secrets"
            owner, name = query["labelSelector"].split(",")
            items = [s for s in self.secrets.values()
                     if "%s=%s" % ("owner", s["metadata"]["labels"].get("owner")) == owner
                     and "name=%s" % s["metadata"]["labels"].get("name") == name]
            return {"items": items, "metadata": {"resourceVersion": "999"}}
        assert method == "DELETE"
        name = path.rsplit("/", 1)[1]
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "reset-after":
                self.secrets.pop(name, None)
                raise ConnectionResetError("reset after the request went through")
            raise failure
        if name not in self.secrets:
            raise ApiError(404, "not found")
        meta = self.secrets[name]["metadata"]
        pre = body["preconditions"]
        if pre.get("uid") != meta["uid"] or pre.get("resourceVersion") != meta["resourceVersion"]:
            raise ApiError(409, "precondition failed")
        del self.secrets[name]
        return {"kind": "Status", "status": "Success"}


PARAMS = {"release_name": "hub", "release_namespace": "ns", "stale_after": 0}
FAST = RetryPolicy(attempts=3, base=0.0, jitter=0.0)


def test_run_recovers_and_deletes_only_the_pending_record():
    api = FakeApi([secret(1, "deployed"), secret(2, "pending-upgrade"), secret(1, "deployed", release="other")])
    result = hr.run_recover(api, PARAMS, now=NOW + 60, policy=FAST, sleep=lambda s: None)
    assert result["changed"] and result["recovered"] and not result["refused"]
    assert (result["previous_status"], result["revision"]) == ("pending-upgrade", 2)
    assert result["removed"] == [{"revision": 2, "status": "pending-upgrade", "secret": "sh.helm.release.v1.hub.v2"}]
    assert sorted(api.secrets) == ["sh.helm.release.v1.hub.v1", "sh.helm.release.v1.other.v1"]
    deletes = [c for c in api.calls if c[0] == "DELETE"]
    assert len(deletes) == 1
    assert deletes[0][3]["preconditions"] == {"uid": "uid-2", "resourceVersion": "102"}
    assert api.calls[0][2]["labelSelector"] == "owner=helm,name=hub"
    assert SECRET_VALUE not in json.dumps(result)


@pytest.mark.parametrize("records, deployed", [
    ([], False),
    ([(1, "failed")], False),
    ([(1, "uninstalling")], False),
    ([(1, "deployed")], True),
    ([(1, "deployed"), (2, "pending-upgrade")], True),
    ([(1, "superseded"), (2, "failed")], False),
    ([(1, "failed"), (2, "deployed", "other")], False),
])
def test_run_says_whether_a_deployed_revision_is_left(records, deployed):
    api = FakeApi([secret(*r) if len(r) == 2 else secret(r[0], r[1], release=r[2]) for r in records])
    result = hr.run_recover(api, PARAMS, check_mode=True, now=NOW + 60)
    assert result["deployed"] is deployed


def test_run_in_check_mode_deletes_nothing():
    api = FakeApi([secret(1, "pending-install")])
    result = hr.run_recover(api, PARAMS, check_mode=True, now=NOW + 60)
    assert result["changed"] and not result["recovered"]
    assert result["removed"] == [{"revision": 1, "status": "pending-install", "secret": "sh.helm.release.v1.hub.v1"}]
    assert "would remove that revision's record" in result["msg"]
    assert [c[0] for c in api.calls] == ["GET"]
    assert list(api.secrets) == ["sh.helm.release.v1.hub.v1"]


def test_run_on_a_settled_release_changes_nothing():
    api = FakeApi([secret(1, "superseded"), secret(2, "deployed")])
    result = hr.run_recover(api, PARAMS, now=NOW)
    assert (result["changed"], result["recovered"], result["removed"]) == (False, False, [])
    assert "diff" not in result
    assert result["msg"] == "release ns/hub is deployed at revision 2; nothing to recover"


def test_run_refuses_a_recent_pending_revision():
    api = FakeApi([secret(1, "pending-install")])
    result = hr.run_recover(api, dict(PARAMS, stale_after=3600), now=NOW + 10)
    assert result["refused"] and not result["changed"]
    assert "another run may still be working on it" in result["msg"]
    assert len(api.secrets) == 1


def test_a_delete_retried_after_a_reset_that_went_through_counts_as_done():
    api = FakeApi([secret(1, "pending-install")], failures=["reset-after"])
    result = hr.run_recover(api, PARAMS, now=NOW + 60, policy=FAST, sleep=lambda s: None)
    assert result["recovered"] and not api.secrets
    assert len([c for c in api.calls if c[0] == "DELETE"]) == 2


def test_a_first_404_is_an_error_not_a_success():
    api = FakeApi([secret(1, "pending-install")], failures=[ApiError(404, "gone")])
    with pytest.raises(ApiError) as err:
        hr.run_recover(api, PARAMS, now=NOW + 60, policy=FAST, sleep=lambda s: None)
    assert err.value.status == 404


def test_a_record_changed_under_us_stops_with_a_clear_error():
    api = FakeApi([secret(1, "deployed"), secret(2, "pending-upgrade"), secret(3, "pending-upgrade")])
    # Revision 2 changes after it was read (a run wrote it): the second delete fails its precondition.
    original = api.request

    def request(method, path, query=None, body=None):
        if method == "DELETE" and path.endswith(".v3"):
            api.secrets["sh.helm.release.v1.hub.v2"]["metadata"]["resourceVersion"] = "555"
        return original(method, path, query, body)

    api.request = request
    with pytest.raises(ApiError) as err:
        hr.run_recover(api, PARAMS, now=NOW + 60, policy=FAST, sleep=lambda s: None)
    assert err.value.status == 409 and err.value.changed is True
    assert "another run is still working on release ns/hub" in str(err.value)
    assert sorted(api.secrets) == ["sh.helm.release.v1.hub.v1", "sh.helm.release.v1.hub.v2"]
