# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.security_posture import image_is_pinned, posture

NS = ["mlflow", "jupyterhub"]


def _ns(name, labels=None):
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels if labels is not None else {"pod-security.kubernetes.io/enforce": "restricted"}}}


def _deny(namespace):
    return {"kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


def _deploy(namespace, image, init_image=None):
    spec = {"containers": [{"name": "main", "image": image}]}
    if init_image:
        spec["initContainers"] = [{"name": "init", "image": init_image}]
    return {"kind": "Deployment", "metadata": {"name": "app", "namespace": namespace}, "spec": {"template": {"spec": spec}}}


GOOD = [_ns("mlflow"), _ns("jupyterhub"), _deny("mlflow"), _deny("jupyterhub"),
        _deploy("mlflow", "docker.io/burakince/mlflow:3.4.0"),
        _deploy("jupyterhub", "quay.io/jupyterhub/k8s-hub@sha256:" + "a" * 64),
        {"kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "mlflow"}, "data": {"password_file": "", "url": "http://x"}},
        {"kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admin"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "Group", "name": "system:masters"}]},
        {"kind": "Deployment", "metadata": {"name": "other", "namespace": "elsewhere"},
         "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "busybox"}]}}}}]
MLFLOW = {"extraArgs": {"appName": "basic-auth"}}
HUB = {"hub": {"config": {"JupyterHub": {"authenticator_class": "azuread"}}}}


def _rules_failing(objects, **kwargs):
    kwargs.setdefault("mlflow_values", MLFLOW)
    kwargs.setdefault("jupyterhub_values", HUB)
    out = posture(objects, NS, **kwargs)
    return sorted(rule for rule, found in out["rules"].items() if found)


def test_a_sound_platform_has_no_finding():
    out = posture(GOOD, NS, mlflow_values=MLFLOW, jupyterhub_values=HUB)
    assert out["ok"] and out["findings"] == []


@pytest.mark.parametrize("image, pinned", [
    ("nginx", False), ("nginx:latest", False), ("registry:5000/nginx", False), ("", False), (None, False),
    ("nginx:1.27", True), ("registry:5000/nginx:1.27", True), ("nginx@sha256:" + "b" * 64, True),
])
def test_image_is_pinned(image, pinned):
    assert image_is_pinned(image) is pinned


def _planted(mutate):
    objects = copy.deepcopy(GOOD)
    mutate(objects)
    return objects


@pytest.mark.parametrize("mutate, rule", [
    (lambda o: o.__setitem__(0, _ns("mlflow", labels={})), "psa_labels"),
    (lambda o: o.pop(0), "psa_labels"),
    (lambda o: o.__setitem__(2, dict(_deny("mlflow"),
                                     spec={"podSelector": {"matchLabels": {"a": "b"}}, "policyTypes": ["Ingress", "Egress"]})),
     "default_deny"),
    (lambda o: o.__setitem__(3, dict(_deny("jupyterhub"), spec={"podSelector": {}, "policyTypes": ["Ingress"]})), "default_deny"),
    (lambda o: o.append(_deploy("mlflow", "docker.io/burakince/mlflow:latest")), "pinned_images"),
    (lambda o: o.append(_deploy("mlflow", "docker.io/burakince/mlflow:3.4.0", init_image="busybox")), "pinned_images"),
    (lambda o: o.append({"kind": "CronJob", "metadata": {"name": "backup", "namespace": "mlflow"},
                         "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "postgres"}]}}}}}}),
     "pinned_images"),
    (lambda o: o.append({"kind": "ClusterRoleBinding", "metadata": {"name": "team"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                         "subjects": [{"kind": "User", "name": "alice@example.com"}]}), "no_user_cluster_admin"),
    (lambda o: o.append({"kind": "ClusterRoleBinding", "metadata": {"name": "sa"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                         "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "jupyterhub"}]}), "no_user_cluster_admin"),
    (lambda o: o.append({"kind": "ConfigMap", "metadata": {"name": "db", "namespace": "mlflow"}, "data": {"POSTGRES_PASSWORD": "hunter2"}}),
     "no_secrets_in_configmaps"),
    (lambda o: o.append({"kind": "ConfigMap", "metadata": {"name": "tls", "namespace": "jupyterhub"},
                         "data": {"tls.key": "-----BEGIN RSA PRIVATE KEY-----\nMII..."}}), "no_secrets_in_configmaps"),
])
def test_each_planted_violation_is_found_by_its_rule(mutate, rule):
    assert _rules_failing(_planted(mutate)) == [rule]


def test_auth_rules():
    assert _rules_failing(GOOD, mlflow_values={"extraArgs": {}}) == ["mlflow_auth"]
    dummy = {"hub": {"config": {"JupyterHub": {"authenticator_class": "dummy"}}}}
    assert _rules_failing(GOOD, jupyterhub_values=dummy) == ["jupyterhub_auth"]
    assert _rules_failing(GOOD, jupyterhub_values=dummy, allow_dummy_auth=True) == []
    assert _rules_failing(GOOD, jupyterhub_values={}) == ["jupyterhub_auth"]
    assert _rules_failing(GOOD, mlflow_values=None, jupyterhub_values=None) == []


def test_settings_that_name_secrets_are_not_secrets():
    kserve = {"kind": "ConfigMap", "metadata": {"name": "inferenceservice-config", "namespace": "mlflow"},
              "data": {"credentials": '{"s3": {"s3AccessKeyIDName": "AWS_ACCESS_KEY_ID"}}', "token_file": "[]"}}
    assert posture(GOOD + [kserve], NS, mlflow_values=MLFLOW, jupyterhub_values=HUB)["ok"]


def test_objects_outside_the_platform_namespaces_are_not_judged():
    objects = GOOD + [{"kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}, "data": {"token": "abc"}}]
    assert posture(objects, NS, mlflow_values=MLFLOW, jupyterhub_values=HUB)["ok"]
