"""Unit tests of the played KServe controller's pure logic (tests/testbed/node_agent/kserve.py; no cluster needed)."""

import functools

import pytest

from node_agent import kserve

NOW = '2026-12-03T08:00:00Z'
LATER = '2026-12-03T08:05:00Z'
SCHEDULER_MESSAGE = '0/4 nodes are available: 2 Insufficient nvidia.com/gpu, 2 node(s) had taint {node-role: system}, that the pod didn\'t tolerate.'


def isvc(name='fraud', namespace='serving', mode=None, model=None, predictor=None, generation=1, status=None):
    annotations = {kserve.MODE_ANNOTATION: mode} if mode else {}
    spec_model = {'modelFormat': {'name': 'sklearn'}, 'storageUri': 's3://models/fraud/'}
    spec_model.update(model or {})
    spec_predictor = {'model': spec_model}
    spec_predictor.update(predictor or {})
    obj = {'apiVersion': 'serving.kserve.io/v1beta1', 'kind': 'InferenceService',
           'metadata': {'name': name, 'namespace': namespace, 'uid': 'uid-1', 'generation': generation, 'annotations': annotations},
           'spec': {'predictor': spec_predictor}}
    if status:
        obj['status'] = status
    return obj


def runtime(name, formats, namespace='serving', image='kserve/sklearnserver:v0.20.0', auto_select=True, disabled=False):
    return {'metadata': {'name': name, 'namespace': namespace},
            'spec': {'disabled': disabled, 'supportedModelFormats': [dict(name=f, autoSelect=auto_select) for f in formats],
                     'containers': [{'name': 'kserve-container', 'image': image, 'args': ['--model_dir=/mnt/models']}]}}


def deployment(available=True, replicas=1, generation=1, observed=1):
    return {'metadata': {'name': 'fraud-predictor', 'generation': generation}, 'spec': {'replicas': replicas},
            'status': {'observedGeneration': observed, 'updatedReplicas': replicas if available else 0,
                       'availableReplicas': replicas if available else 0,
                       'conditions': [{'type': 'Available', 'status': 'True' if available else 'False'}]}}


def pending_pod(message=SCHEDULER_MESSAGE):
    return {'metadata': {'name': 'fraud-predictor-abc'},
            'status': {'phase': 'Pending', 'conditions': [{'type': 'PodScheduled', 'status': 'False', 'reason': 'Unschedulable',
                                                           'message': message}]}}


def waiting_pod(reason, message=None):
    return {'metadata': {'name': 'fraud-predictor-xyz'},
            'status': {'phase': 'Pending', 'conditions': [{'type': 'PodScheduled', 'status': 'True'}],
                       'containerStatuses': [{'name': 'kserve-container', 'state': {'waiting': {'reason': reason, 'message': message}}}]}}


def condition(status, kind='Ready'):
    return next(c for c in status['conditions'] if c['type'] == kind)


@pytest.mark.parametrize('annotation, default, expected', [
    (None, 'Standard', 'Standard'),
    ('RawDeployment', 'Knative', 'Standard'),
    ('Serverless', 'Standard', 'Knative'),
    ('Knative', 'Standard', 'Knative'),
    (None, 'Serverless', 'Knative'),
])
def test_deployment_mode(annotation, default, expected):
    assert kserve.deployment_mode(isvc(mode=annotation), default) == expected


def test_named_runtime_is_found_namespaced_before_cluster():
    local = runtime('sk', ['sklearn'], image='local:1')
    cluster = runtime('sk', ['sklearn'], namespace=None, image='cluster:1')
    chosen, outcome = kserve.resolve_runtime(isvc(model={'runtime': 'sk'}), [local], [cluster])
    assert outcome is None and chosen is local


def test_named_runtime_missing_or_not_supporting_the_format():
    chosen, outcome = kserve.resolve_runtime(isvc(model={'runtime': 'nope'}), [], [])
    assert chosen is None and outcome == kserve.Outcome('RuntimeNotRecognized', 'No ServingRuntimes or ClusterServingRuntimes with the name: nope')
    chosen, outcome = kserve.resolve_runtime(isvc(model={'runtime': 'xgb'}), [runtime('xgb', ['xgboost'])], [])
    assert chosen is None and outcome.reason == 'RuntimeNotRecognized' and 'does not support' in outcome.message


def test_auto_select_skips_other_namespaces_disabled_and_non_auto_runtimes():
    candidates = [runtime('a', ['sklearn'], namespace='other'), runtime('b', ['sklearn'], disabled=True), runtime('c', ['sklearn'], auto_select=False),
                  runtime('d', ['xgboost'])]
    chosen, outcome = kserve.resolve_runtime(isvc(), candidates, [])
    assert chosen is None and outcome == kserve.Outcome('NoSupportingRuntime', 'No runtime found to support predictor with model type: sklearn')
    chosen, outcome = kserve.resolve_runtime(isvc(), candidates, [runtime('cluster-sk', ['sklearn'], namespace=None)])
    assert outcome is None and chosen['metadata']['name'] == 'cluster-sk'


def test_model_image_needs_no_runtime():
    assert kserve.resolve_runtime(isvc(model={'image': 'my/server:1.2'}), [], []) == (None, None)


def test_deployment_takes_pod_fields_from_the_predictor_and_container_fields_from_the_model():
    gpu = isvc(model={'resources': {'limits': {'nvidia.com/gpu': 1}}, 'image': 'kserve/huggingfaceserver:v0.20.0-gpu'},
               predictor={'tolerations': [{'key': 'nvidia.com/gpu', 'operator': 'Exists', 'effect': 'NoSchedule'}],
                          'nodeSelector': {'node-type': 'ai'}, 'minReplicas': 2, 'maxReplicas': 4})
    body = kserve.render_deployment(gpu, runtime('sk', ['sklearn']))
    pod = body['spec']['template']['spec']
    container = pod['containers'][0]
    assert body['metadata']['name'] == 'fraud-predictor' and body['metadata']['namespace'] == 'serving'
    assert body['metadata']['ownerReferences'][0]['kind'] == 'InferenceService' and body['metadata']['ownerReferences'][0]['controller'] is True
    assert body['spec']['replicas'] == 2
    assert pod['tolerations'][0]['key'] == 'nvidia.com/gpu' and pod['nodeSelector'] == {'node-type': 'ai'}
    assert container['name'] == 'kserve-container'
    assert container['image'] == 'kserve/huggingfaceserver:v0.20.0-gpu'  # the model's pinned image wins over the runtime's
    assert container['args'] == ['--model_dir=/mnt/models']  # from the runtime
    assert container['resources'] == {'limits': {'nvidia.com/gpu': 1}}
    assert {'name': 'STORAGE_URI', 'value': 's3://models/fraud/'} in container['env']
    assert body['spec']['selector']['matchLabels'] == {'app': 'isvc.fraud-predictor'}
    assert body['spec']['template']['metadata']['labels'][kserve.ISVC_LABEL] == 'fraud'


def test_deployment_hash_follows_the_spec():
    base = kserve.render_deployment(isvc(), runtime('sk', ['sklearn']))
    same = kserve.render_deployment(isvc(), runtime('sk', ['sklearn']))
    other = kserve.render_deployment(isvc(predictor={'minReplicas': 3}), runtime('sk', ['sklearn']))
    assert base['metadata']['annotations'] == same['metadata']['annotations']
    assert base['metadata']['annotations'] != other['metadata']['annotations']


def test_service_points_at_the_model_port():
    body = kserve.render_service(isvc())
    assert body['spec']['selector'] == {'app': 'isvc.fraud-predictor'}
    assert body['spec']['ports'][0]['targetPort'] == kserve.MODEL_PORT


def test_ready_status_has_url_and_true_conditions():
    status = kserve.isvc_status(isvc(generation=3), deployment(), [], None, NOW)
    assert [(c['type'], c['status']) for c in status['conditions']] == [('IngressReady', 'True'), ('PredictorReady', 'True'), ('Ready', 'True')]
    assert status['url'] == 'http://fraud-predictor.serving.svc.cluster.local'
    assert status['address']['url'] == status['url']
    assert status['observedGeneration'] == 3
    assert status['modelStatus']['transitionStatus'] == 'UpToDate'


def test_unschedulable_gpu_pod_is_named_in_the_ready_condition():
    status = kserve.isvc_status(isvc(), deployment(available=False), [pending_pod()], None, NOW)
    ready = condition(status)
    assert ready['status'] == 'False' and ready['reason'] == 'Unschedulable'
    assert 'Insufficient nvidia.com/gpu' in ready['message'] and 'fraud-predictor-abc' in ready['message']
    assert 'lastFailureInfo' not in status['modelStatus']  # still waiting for capacity, not a failed load
    assert status['modelStatus']['transitionStatus'] == 'InProgress'
    assert 'url' not in status


@pytest.mark.parametrize('reason', ['ImagePullBackOff', 'CrashLoopBackOff', 'ErrImagePull'])
def test_waiting_container_reason_is_reported(reason):
    status = kserve.isvc_status(isvc(), deployment(available=False), [waiting_pod(reason, 'back-off')], None, NOW)
    ready = condition(status)
    assert ready['reason'] == reason and 'kserve-container' in ready['message']
    assert status['modelStatus']['lastFailureInfo']['reason'] == 'ModelLoadFailed'
    assert status['modelStatus']['lastFailureInfo']['message'].startswith(reason)
    assert status['modelStatus']['transitionStatus'] == 'BlockedByFailedLoad'


def test_container_creating_is_not_a_failure():
    ready = condition(kserve.isvc_status(isvc(), deployment(available=False), [waiting_pod('ContainerCreating')], None, NOW))
    assert ready['reason'] == 'MinimumReplicasUnavailable'


def test_rollout_in_progress_is_not_ready():
    assert condition(kserve.isvc_status(isvc(), deployment(generation=2, observed=1), [], None, NOW))['status'] == 'False'


def test_runtime_outcome_and_serverless_mark_the_spec_invalid():
    outcome = kserve.Outcome('NoSupportingRuntime', 'No runtime found to support predictor with model type: sklearn')
    status = kserve.isvc_status(isvc(), None, [], outcome, NOW)
    assert condition(status)['reason'] == 'NoSupportingRuntime'
    assert status['modelStatus']['transitionStatus'] == 'InvalidSpec'


def test_transition_time_kept_while_the_condition_holds():
    first = kserve.isvc_status(isvc(), deployment(available=False), [pending_pod()], None, NOW)
    again = kserve.isvc_status(isvc(status=first), deployment(available=False), [pending_pod()], None, LATER)
    assert condition(again)['lastTransitionTime'] == NOW
    assert not kserve.status_changed(first, again)
    ready = kserve.isvc_status(isvc(status=again), deployment(), [], None, LATER)
    assert condition(ready)['lastTransitionTime'] == LATER
    assert kserve.status_changed(again, ready)


def test_isvc_key_of_owned_objects():
    assert kserve.isvc_key_of({'metadata': {'namespace': 'serving', 'labels': {kserve.ISVC_LABEL: 'fraud'}}}) == 'serving/fraud'
    assert kserve.isvc_key_of({'metadata': {'namespace': 'serving', 'labels': {}}}) is None


@functools.lru_cache(maxsize=1)
def status_schema():
    """The status schema of the real InferenceService CRD (upstream data; fails when missing)."""
    import upstream  # pylint: disable=import-outside-toplevel
    # The 2 MB CRD, loaded once.
    crd = upstream.load_yaml('kserve', 'kserve-crd', 'crds', 'serving.kserve.io_inferenceservices.yaml')
    version = next(v for v in crd['spec']['versions'] if v['name'] == 'v1beta1')
    return version['schema']['openAPIV3Schema']['properties']['status']


@pytest.mark.parametrize('case', ['ready', 'unschedulable', 'crashloop', 'no-runtime', 'serverless'])
def test_every_status_the_controller_writes_is_valid_for_the_real_crd(case):
    import jsonschema  # pylint: disable=import-outside-toplevel
    outcomes = {'no-runtime': kserve.Outcome('NoSupportingRuntime', 'No runtime found to support predictor with model type: sklearn'),
                'serverless': kserve.Outcome('ServerlessNotAvailable', 'needs Knative Serving')}
    pods = {'unschedulable': [pending_pod()], 'crashloop': [waiting_pod('CrashLoopBackOff', 'back-off 10s')]}
    status = kserve.isvc_status(isvc(), deployment(available=case == 'ready') if case not in outcomes else None, pods.get(case, []),
                                outcomes.get(case), NOW)
    jsonschema.validate(status, status_schema())
