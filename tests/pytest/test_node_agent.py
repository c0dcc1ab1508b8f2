"""Testbed-backed tests of the node agent: nodes, scheduling, pod lifecycle, logs, faults and the played GPU operator.

They wait on the cluster with short polls and bounded timeouts; nothing here asserts on durations.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml

from kubernetes import client

from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FAULTS = 'testbed.mlops.platform/faults'
GPU_NODE = 'gpu-1'
OPERATOR_NS = 'gpu-operator'
GPU_TOLERATION = {'key': 'nvidia.com/gpu', 'operator': 'Exists', 'effect': 'NoSchedule'}
CUDA_IMAGE = 'nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0'


@pytest.fixture(scope='module')
def core(k8s):
    """CoreV1Api on the testbed."""
    return client.CoreV1Api(k8s)


@pytest.fixture(scope='module')
def custom(k8s):
    """CustomObjectsApi on the testbed."""
    return client.CustomObjectsApi(k8s)


def node(core, name):
    """The node as a plain dict."""
    return core.api_client.sanitize_for_serialization(core.read_node(name))


def set_faults(core, name, faults):
    """Set (or with an empty list, clear) the runtime faults annotation of a node."""
    core.patch_node(name, {'metadata': {'annotations': {FAULTS: ','.join(faults) if faults else None}}})


@pytest.fixture
def gpu_node(core):
    """A GPU node whose runtime faults are cleared again after the test."""
    set_faults(core, GPU_NODE, [])
    yield GPU_NODE
    set_faults(core, GPU_NODE, [])
    poll_until(lambda: ready_status(node(core, GPU_NODE)) == 'True', 30, 'the node to recover')


def ready_status(body):
    """Status of the Ready condition."""
    return next((c['status'] for c in body['status'].get('conditions') or [] if c['type'] == 'Ready'), None)


def node_if_ready(core, name, status):
    """The node when its Ready condition has ``status``, else None."""
    body = node(core, name)
    return body if ready_status(body) == status else None


def gpu_allocatable(body, resource='nvidia.com/gpu'):
    """Allocatable count of ``resource`` (None when absent)."""
    value = body['status'].get('allocatable', {}).get(resource)
    return None if value is None else int(value)


def job_body(name, node_name=None, gpus=1):
    """A vectorAdd-like GPU Job."""
    spec = {'restartPolicy': 'Never', 'tolerations': [GPU_TOLERATION],
            'nodeSelector': dict({'accelerator': 'nvidia-gpu'}, **({'kubernetes.io/hostname': node_name} if node_name else {})),
            'containers': [{'name': 'cuda', 'image': CUDA_IMAGE, 'resources': {'limits': {'nvidia.com/gpu': str(gpus)}}}]}
    return {'apiVersion': 'batch/v1', 'kind': 'Job', 'metadata': {'name': name},
            'spec': {'backoffLimit': 0, 'template': {'spec': spec}}}


def deployment_body(name, replicas, gpu):
    """A Deployment; with ``gpu`` it tolerates the GPU taint, selects GPU nodes and requests a GPU."""
    container = {'name': 'app', 'image': 'registry.example/app:1'}
    spec = {'containers': [container]}
    if gpu:
        spec.update(tolerations=[GPU_TOLERATION], nodeSelector={'accelerator': 'nvidia-gpu'})
        container['resources'] = {'limits': {'nvidia.com/gpu': '1'}}
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': name},
            'spec': {'replicas': replicas, 'selector': {'matchLabels': {'app': name}},
                     'template': {'metadata': {'labels': {'app': name}}, 'spec': spec}}}


def job_pods(core, namespace, job):
    """Pods of a Job."""
    return core.list_namespaced_pod(namespace, label_selector='job-name=%s' % job).items


def finished_job_pod(core, namespace, job, timeout=60):
    """Wait until the Job's pod finished and return it."""
    def done():
        found = [p for p in job_pods(core, namespace, job) if p.status.phase in ('Succeeded', 'Failed')]
        return found[0] if found else None
    return poll_until(done, timeout, 'job %s to finish' % job)


# ------------------------------------------------------------------------------------------ nodes

def test_nodes_are_registered_with_resources_labels_and_taints(core):
    nodes = {n['metadata']['name']: n for n in (node(core, name) for name in ('gpu-0', 'gpu-1', 'system-0', 'system-1'))}
    for name, body in nodes.items():
        assert ready_status(body) == 'True', name
        assert body['metadata']['labels']['testbed.mlops.platform/managed'] == 'true'
        assert {'type': 'InternalIP', 'address': '127.0.0.1'} in body['status']['addresses']
        assert body['status']['nodeInfo']['kubeletVersion'] == 'v1.20.2'
        assert body['status']['daemonEndpoints']['kubeletEndpoint']['Port'] > 0
    gpu = nodes['gpu-0']
    assert gpu['status']['capacity']['nvidia.com/gpu'] == '4'
    assert gpu['metadata']['labels']['node-type'] == 'ai' and gpu['metadata']['labels']['accelerator'] == 'nvidia-gpu'
    assert {'key': 'nvidia.com/gpu', 'value': 'true', 'effect': 'NoSchedule'} in gpu['spec']['taints']
    system = nodes['system-0']
    assert 'nvidia.com/gpu' not in system['status']['allocatable'] and not system['spec'].get('taints')
    lease = client.CoordinationV1Api(core.api_client).read_namespaced_lease('gpu-0', 'kube-node-lease')
    assert lease.spec.holder_identity == 'gpu-0' and lease.spec.renew_time is not None


def test_gpu_deployment_is_scheduled_on_gpu_nodes_and_ready(k8s, core, namespace):
    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_deployment(namespace, deployment_body('trainer', 2, gpu=True))
    poll_until(lambda: (apps.read_namespaced_deployment('trainer', namespace).status.ready_replicas or 0) == 2, 60, 'trainer ready')
    pods = core.list_namespaced_pod(namespace, label_selector='app=trainer').items
    assert {p.spec.node_name for p in pods} <= {'gpu-0', 'gpu-1'}
    for pod in pods:
        assert pod.status.phase == 'Running' and pod.status.pod_ip and pod.status.host_ip == '127.0.0.1'
        assert pod.status.container_statuses[0].ready and pod.status.container_statuses[0].container_id
        assert {c.type for c in pod.status.conditions} == {'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'}
    assert len({p.status.pod_ip for p in pods}) == 2


def test_pods_without_toleration_stay_off_gpu_nodes(k8s, core, namespace):
    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_deployment(namespace, deployment_body('web', 4, gpu=False))
    poll_until(lambda: (apps.read_namespaced_deployment('web', namespace).status.ready_replicas or 0) == 4, 60, 'web ready')
    nodes = {p.spec.node_name for p in core.list_namespaced_pod(namespace, label_selector='app=web').items}
    assert nodes and nodes <= {'system-0', 'system-1'}


def test_job_succeeds_and_its_log_says_passed(k8s, core, namespace):
    batch = client.BatchV1Api(k8s)
    batch.create_namespaced_job(namespace, job_body('vadd'))
    pod = finished_job_pod(core, namespace, 'vadd')
    assert pod.status.phase == 'Succeeded'
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == 'Completed'
    poll_until(lambda: (batch.read_namespaced_job('vadd', namespace).status.succeeded or 0) == 1, 30, 'job succeeded')
    log = core.read_namespaced_pod_log(pod.metadata.name, namespace, container='cuda')
    assert 'Test PASSED' in log
    assert core.read_namespaced_pod_log(pod.metadata.name, namespace, container='cuda', tail_lines=1).strip() == 'Done'


def test_smoke_fail_fault_fails_the_job(k8s, core, namespace, gpu_node):
    set_faults(core, gpu_node, ['smoke-fail'])
    client.BatchV1Api(k8s).create_namespaced_job(namespace, job_body('vadd-fail', node_name=gpu_node))
    pod = finished_job_pod(core, namespace, 'vadd-fail')
    assert pod.status.phase == 'Failed' and pod.spec.node_name == gpu_node
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 1 and terminated.reason == 'Error'
    assert 'Test FAILED' in core.read_namespaced_pod_log(pod.metadata.name, namespace)


def test_logs_are_readable_with_kubernetes_core_k8s_log(k8s, core, namespace, ansible_env):
    client.BatchV1Api(k8s).create_namespaced_job(namespace, job_body('vadd-log'))
    pod = finished_job_pod(core, namespace, 'vadd-log')
    args = 'name=%s namespace=%s' % (pod.metadata.name, namespace)
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-c', 'local', '-o',
                           '-m', 'kubernetes.core.k8s_log', '-a', args], env=ansible_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Test PASSED' in proc.stdout


def create_pod(core, namespace, claim_name=None):
    """Create a bare pod (mounting ``claim_name`` when given); False while the namespace's service account token is not there yet."""
    spec = {'containers': [{'name': 'c', 'image': 'busybox'}]}
    if claim_name:
        spec['containers'][0]['volumeMounts'] = [{'name': 'data', 'mountPath': '/data'}]
        spec['volumes'] = [{'name': 'data', 'persistentVolumeClaim': {'claimName': claim_name}}]
    try:
        core.create_namespaced_pod(namespace, {'metadata': {'name': 'p'}, 'spec': spec})
        return True
    except client.ApiException as exc:
        if exc.status == 500 or (exc.status == 403 and 'serviceaccount' in (exc.body or '')):
            return False
        raise


def test_namespace_deletion_completes(core, namespaces):
    name = 't-%s' % uuid.uuid4().hex[:10]
    core.create_namespace({'metadata': {'name': name}})
    poll_until(lambda: create_pod(core, name), 30, 'a pod to be accepted in the new namespace')
    poll_until(lambda: core.read_namespaced_pod('p', name).status.phase == 'Running', 30, 'pod running')
    namespaces.delete_and_wait(name, 90)


# ------------------------------------------------------------------------------------------ runtime faults

def test_allocatable_faults_are_visible_and_reversible(core, gpu_node):
    capacity = node(core, gpu_node)['status']['capacity']['nvidia.com/gpu']
    set_faults(core, gpu_node, ['gpu-allocatable-zero'])
    poll_until(lambda: gpu_allocatable(node(core, gpu_node)) == 0, 15, 'allocatable 0')
    assert node(core, gpu_node)['status']['capacity']['nvidia.com/gpu'] == capacity
    set_faults(core, gpu_node, ['gpu-allocatable-partial'])
    poll_until(lambda: gpu_allocatable(node(core, gpu_node)) == int(capacity) - 1, 15, 'allocatable capacity-1')
    set_faults(core, gpu_node, [])
    poll_until(lambda: gpu_allocatable(node(core, gpu_node)) == int(capacity), 15, 'allocatable restored')


def test_not_ready_fault_is_visible_and_reversible(core, gpu_node):
    set_faults(core, gpu_node, ['not-ready'])
    body = poll_until(lambda: node_if_ready(core, gpu_node, 'False'), 15, 'node NotReady')
    reason = next(c['reason'] for c in body['status']['conditions'] if c['type'] == 'Ready')
    assert reason == 'KubeletNotReady'
    assert any(t['key'] == 'node.kubernetes.io/not-ready' for t in body['spec']['taints'])
    set_faults(core, gpu_node, [])
    body = poll_until(lambda: node_if_ready(core, gpu_node, 'True'), 15, 'node Ready again')
    assert not any(t['key'] == 'node.kubernetes.io/not-ready' for t in body['spec']['taints'])


# ------------------------------------------------------------------------------------------ GPU operator

def ensure_crd(k8s):
    """The cluster must serve the real ClusterPolicy CRD (the testbed installs it from the upstream chart data)."""
    ext = client.ApiextensionsV1Api(k8s)
    try:
        crd = ext.read_custom_resource_definition('clusterpolicies.nvidia.com')
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        pytest.fail('the cluster does not serve clusterpolicies.nvidia.com: `testbed.py up` installs the real CRDs '
                    'from the upstream chart data (MLOPS_UPSTREAM_DATA)')
    assert any(c.type == 'Established' and c.status == 'True' for c in crd.status.conditions or []), crd.status


def policy_body(name, config_name=None):
    """A ClusterPolicy with every operand section the real CRD requires."""
    spec = {section: {} for section in ('operator', 'daemonsets')}
    spec.update({section: {'enabled': True} for section in ('driver', 'toolkit', 'dcgm', 'dcgmExporter', 'gfd')})
    spec['nodeStatusExporter'] = {'enabled': False}
    spec['devicePlugin'] = {'enabled': True, 'config': {'name': config_name, 'default': 'any'}} if config_name else {'enabled': True}
    return {'apiVersion': 'nvidia.com/v1', 'kind': 'ClusterPolicy', 'metadata': {'name': name}, 'spec': spec}


@pytest.fixture
def cluster_policy(k8s, custom):
    """A ClusterPolicy owned by the test (the operator honours one, so others must be gone first); deleted afterwards."""
    ensure_crd(k8s)

    def others():
        return [p['metadata']['name'] for p in custom.list_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies')['items']]
    poll_until(lambda: not others() or None, 60, 'other ClusterPolicies to go away') if others() else None
    name = 't-policy-%s' % uuid.uuid4().hex[:6]
    yield name
    try:
        custom.delete_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    apps = client.AppsV1Api(k8s)
    poll_until(lambda: not apps.list_namespaced_daemon_set(OPERATOR_NS, label_selector='app.kubernetes.io/managed-by=gpu-operator').items,
               60, 'operand DaemonSets to be removed')


def policy_state(custom, name):
    """status.state of a ClusterPolicy."""
    return (custom.get_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', name).get('status') or {}).get('state')


def test_cluster_policy_brings_operands_gfd_labels_and_ready_state(k8s, core, custom, cluster_policy):
    custom.create_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', policy_body(cluster_policy))
    poll_until(lambda: policy_state(custom, cluster_policy) == 'ready', 90, 'ClusterPolicy ready')
    policy = custom.get_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', cluster_policy)
    assert policy['status']['namespace'] == OPERATOR_NS
    assert [c['status'] for c in policy['status']['conditions'] if c['type'] == 'Ready'] == ['True']
    apps = client.AppsV1Api(k8s)
    daemonsets = {d.metadata.name: d for d in apps.list_namespaced_daemon_set(OPERATOR_NS).items}
    for name in ('nvidia-driver-daemonset', 'nvidia-container-toolkit-daemonset', 'nvidia-device-plugin-daemonset',
                 'gpu-feature-discovery', 'nvidia-dcgm-exporter', 'nvidia-operator-validator'):
        assert name in daemonsets, name
        ds = daemonsets[name]
        assert ds.metadata.labels['app.kubernetes.io/managed-by'] == 'gpu-operator'
        assert ds.metadata.owner_references[0].name == cluster_policy
        assert ds.status.desired_number_scheduled == 2 and ds.status.number_ready == 2
    labels = node(core, 'gpu-0')['metadata']['labels']
    assert labels['nvidia.com/gpu.present'] == 'true' and labels['nvidia.com/gpu.product'] == 'NVIDIA-A100-SXM4-80GB'
    assert labels['nvidia.com/gpu.count'] == '4' and labels['nvidia.com/cuda.driver.major'] == '550'
    assert labels['nvidia.com/gpu.sharing-strategy'] == 'none'
    assert 'nvidia.com/gpu.present' not in node(core, 'system-0')['metadata']['labels']
    patch = {'metadata': {'annotations': {'testbed.mlops.platform/state': 'notReady'}}}
    custom.patch_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', cluster_policy, patch)
    poll_until(lambda: policy_state(custom, cluster_policy) == 'notReady', 30, 'forced notReady')


def test_gfd_and_operand_faults_are_visible_and_reversible(k8s, core, custom, cluster_policy, gpu_node):
    custom.create_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', policy_body(cluster_policy))
    poll_until(lambda: policy_state(custom, cluster_policy) == 'ready', 90, 'ClusterPolicy ready')

    def labels():
        return node(core, gpu_node)['metadata']['labels']
    set_faults(core, gpu_node, ['mig-invalid'])
    poll_until(lambda: labels().get('nvidia.com/gpu.product') == 'NVIDIA-A100-SXM4-80GB-MIG-INVALID', 15, 'MIG-INVALID product')
    assert labels()['nvidia.com/mig.config.state'] == 'failed'
    set_faults(core, gpu_node, ['no-gfd-labels'])
    poll_until(lambda: 'nvidia.com/gpu.product' not in labels(), 15, 'GFD labels removed')
    set_faults(core, gpu_node, ['operand-not-ready'])
    apps = client.AppsV1Api(k8s)
    poll_until(lambda: apps.read_namespaced_daemon_set('nvidia-device-plugin-daemonset', OPERATOR_NS).status.number_ready == 1, 30,
               'operand numberReady below desired')
    pod = [p for p in core.list_namespaced_pod(OPERATOR_NS, label_selector='app=nvidia-device-plugin-daemonset').items
           if p.spec.node_name == gpu_node][0]
    assert pod.status.phase == 'Pending' and pod.status.init_container_statuses[0].state.waiting.reason == 'PodInitializing'
    poll_until(lambda: policy_state(custom, cluster_policy) == 'notReady', 30, 'operator notReady while an operand is not ready')
    set_faults(core, gpu_node, [])
    poll_until(lambda: labels().get('nvidia.com/gpu.product') == 'NVIDIA-A100-SXM4-80GB', 15, 'GFD labels back')
    poll_until(lambda: policy_state(custom, cluster_policy) == 'ready', 60, 'operator ready again')


def test_time_slicing_config_multiplies_allocatable(k8s, core, custom, cluster_policy):
    config_name = 'ts-%s' % uuid.uuid4().hex[:6]
    sharing = {'version': 'v1', 'sharing': {'timeSlicing': {'resources': [{'name': 'nvidia.com/gpu', 'replicas': 4}]}}}
    try:
        core.create_namespace({'metadata': {'name': OPERATOR_NS}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    core.create_namespaced_config_map(OPERATOR_NS, {'metadata': {'name': config_name}, 'data': {'any': yaml.safe_dump(sharing)}})
    try:
        custom.create_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', policy_body(cluster_policy, config_name))
        poll_until(lambda: gpu_allocatable(node(core, 'gpu-0')) == 16, 60, 'allocatable 4 GPUs x 4 replicas')
        poll_until(lambda: node(core, 'gpu-0')['metadata']['labels'].get('nvidia.com/gpu.replicas') == '4', 30, 'replicas label')
        labels = node(core, 'gpu-0')['metadata']['labels']
        assert labels['nvidia.com/gpu.sharing-strategy'] == 'time-slicing'
        assert labels['nvidia.com/gpu.product'] == 'NVIDIA-A100-SXM4-80GB-SHARED'
        sharing['sharing']['timeSlicing']['resources'][0]['replicas'] = 2
        core.patch_namespaced_config_map(config_name, OPERATOR_NS, {'data': {'any': yaml.safe_dump(sharing)}})
        poll_until(lambda: gpu_allocatable(node(core, 'gpu-0')) == 8, 30, 'allocatable follows the ConfigMap change')
        core.patch_node('gpu-0', {'metadata': {'labels': {'nvidia.com/device-plugin.config': 'missing-key'}}})
        poll_until(lambda: gpu_allocatable(node(core, 'gpu-0')) == 4, 30, 'node label selects another (absent) config')
    finally:
        core.patch_node('gpu-0', {'metadata': {'labels': {'nvidia.com/device-plugin.config': None}}})
        core.delete_namespaced_config_map(config_name, OPERATOR_NS)
    custom.delete_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', cluster_policy)
    poll_until(lambda: gpu_allocatable(node(core, 'gpu-0')) == 4 and 'nvidia.com/gpu.replicas' not in node(core, 'gpu-0')['metadata']['labels'],
               30, 'sharing and GFD labels gone with the ClusterPolicy')


# ------------------------------------------------------------------------------------------ storage

PROVISIONER = 'testbed.mlops.platform/hostpath'


def claim_body(name, class_name=None, size='1Gi'):
    """A ReadWriteOnce claim; without ``class_name`` the default class is filled in by the API server."""
    spec = {'accessModes': ['ReadWriteOnce'], 'resources': {'requests': {'storage': size}}}
    if class_name:
        spec['storageClassName'] = class_name
    return {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'metadata': {'name': name}, 'spec': spec}


def pod_template(app, claim_name=None):
    """A pod template for CPU nodes mounting ``claim_name`` at /data (or, without it, a volumeClaimTemplate named data)."""
    spec = {'containers': [{'name': 'app', 'image': 'registry.example/app:1', 'volumeMounts': [{'name': 'data', 'mountPath': '/data'}]}]}
    if claim_name:
        spec['volumes'] = [{'name': 'data', 'persistentVolumeClaim': {'claimName': claim_name}}]
    return {'metadata': {'labels': {'app': app}}, 'spec': spec}


def bound_claim(core, namespace, name, timeout=60):
    """Wait until the claim is Bound and return it."""
    def bound():
        claim = core.read_namespaced_persistent_volume_claim(name, namespace)
        return claim if claim.status.phase == 'Bound' else None
    return poll_until(bound, timeout, 'claim %s/%s to be bound' % (namespace, name))


def volume_or_none(core, name):
    """The PV, or None when it does not exist."""
    try:
        return core.read_persistent_volume(name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def volume_phase(core, name):
    """Phase of the PV, ``gone`` when it does not exist."""
    volume = volume_or_none(core, name)
    return 'gone' if volume is None else volume.status.phase


def claim_events(core, namespace, name):
    """Reasons of the events about a claim."""
    return [e.reason for e in core.list_namespaced_event(namespace, field_selector='involvedObject.name=%s' % name).items]


@pytest.fixture
def storage_classes(k8s):
    """Create non-default StorageClasses of the agent's provisioner: ``make(reclaim, binding)`` returns the name; deleted afterwards."""
    storage = client.StorageV1Api(k8s)
    made = []

    def make(reclaim, binding='Immediate'):
        name = 't-%s-%s' % (reclaim.lower(), uuid.uuid4().hex[:6])
        storage.create_storage_class({'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass', 'metadata': {'name': name},
                                      'provisioner': PROVISIONER, 'reclaimPolicy': reclaim, 'volumeBindingMode': binding})
        made.append(name)
        return name
    yield make
    for name in made:
        storage.delete_storage_class(name)


def test_default_storage_class_is_in_place(k8s):
    storage_class = client.StorageV1Api(k8s).read_storage_class('standard')
    assert storage_class.provisioner == PROVISIONER
    assert storage_class.metadata.annotations['storageclass.kubernetes.io/is-default-class'] == 'true'
    assert storage_class.reclaim_policy == 'Delete' and storage_class.volume_binding_mode == 'WaitForFirstConsumer'


def test_claim_binds_for_its_first_consumer_and_is_deleted_with_the_claim(k8s, core, namespace):
    core.create_namespaced_persistent_volume_claim(namespace, claim_body('data', size='2Gi'))
    poll_until(lambda: 'WaitForFirstConsumer' in claim_events(core, namespace, 'data'), 30, 'the PV controller to wait for a consumer')
    claim = core.read_namespaced_persistent_volume_claim('data', namespace)
    assert claim.spec.storage_class_name == 'standard' and claim.status.phase == 'Pending' and not claim.spec.volume_name

    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_deployment(namespace, {
        'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'db'},
        'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': 'db'}}, 'template': pod_template('db', 'data')}})
    poll_until(lambda: (apps.read_namespaced_deployment('db', namespace).status.ready_replicas or 0) == 1, 60, 'db ready')
    claim = bound_claim(core, namespace, 'data')
    pod = core.list_namespaced_pod(namespace, label_selector='app=db').items[0]
    volume = core.read_persistent_volume(claim.spec.volume_name)
    assert volume.metadata.name == 'pvc-' + claim.metadata.uid
    assert volume.metadata.annotations['pv.kubernetes.io/provisioned-by'] == PROVISIONER
    assert volume.spec.capacity['storage'] == '2Gi' and volume.spec.access_modes == ['ReadWriteOnce']
    assert volume.spec.claim_ref.uid == claim.metadata.uid and volume.spec.storage_class_name == 'standard'
    assert volume.spec.persistent_volume_reclaim_policy == 'Delete'
    term = volume.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
    assert (term.key, term.operator, term.values) == ('kubernetes.io/hostname', 'In', [pod.spec.node_name])
    assert claim.metadata.annotations['volume.kubernetes.io/selected-node'] == pod.spec.node_name
    assert os.path.isdir(volume.spec.host_path.path), 'the volume directory is created on provisioning'
    assert 'ProvisioningSucceeded' in claim_events(core, namespace, 'data')

    apps.delete_namespaced_deployment('db', namespace)
    core.delete_namespaced_persistent_volume_claim('data', namespace)
    poll_until(lambda: volume_or_none(core, volume.metadata.name) is None, 90, 'the Delete volume to be deleted with its claim')
    assert not os.path.exists(volume.spec.host_path.path)


def test_retain_volume_stays_released_while_delete_volume_goes(core, namespace, storage_classes):
    keep, drop = storage_classes('Retain'), storage_classes('Delete')
    core.create_namespaced_persistent_volume_claim(namespace, claim_body('kept', keep))
    core.create_namespaced_persistent_volume_claim(namespace, claim_body('dropped', drop))
    kept, dropped = bound_claim(core, namespace, 'kept'), bound_claim(core, namespace, 'dropped')   # Immediate: no consumer needed
    kept_volume = core.read_persistent_volume(kept.spec.volume_name)
    assert kept_volume.spec.persistent_volume_reclaim_policy == 'Retain' and kept_volume.spec.node_affinity is None
    try:
        core.delete_namespaced_persistent_volume_claim('kept', namespace)
        core.delete_namespaced_persistent_volume_claim('dropped', namespace)
        poll_until(lambda: volume_or_none(core, dropped.spec.volume_name) is None, 90, 'the Delete volume to be deleted')
        poll_until(lambda: volume_phase(core, kept.spec.volume_name) == 'Released', 60, 'the Retain volume to be Released')
        volume = core.read_persistent_volume(kept.spec.volume_name)
        assert volume.spec.claim_ref.uid == kept.metadata.uid and volume.metadata.deletion_timestamp is None
        assert os.path.isdir(volume.spec.host_path.path), 'retained data stays on disk'
    finally:
        if volume_or_none(core, kept.spec.volume_name) is not None:
            core.delete_persistent_volume(kept.spec.volume_name)
        shutil.rmtree(kept_volume.spec.host_path.path, ignore_errors=True)


def test_statefulset_claims_are_bound_and_pods_ready(k8s, core, namespace):
    apps = client.AppsV1Api(k8s)
    template = {'metadata': {'name': 'data'}, 'spec': claim_body('data')['spec']}
    apps.create_namespaced_stateful_set(namespace, {
        'apiVersion': 'apps/v1', 'kind': 'StatefulSet', 'metadata': {'name': 'hub'},
        'spec': {'replicas': 2, 'serviceName': 'hub', 'selector': {'matchLabels': {'app': 'hub'}}, 'template': pod_template('hub'),
                 'volumeClaimTemplates': [template]}})
    poll_until(lambda: (apps.read_namespaced_stateful_set('hub', namespace).status.ready_replicas or 0) == 2, 90, 'hub ready')
    for index in range(2):
        claim = bound_claim(core, namespace, 'data-hub-%d' % index)
        pod = core.read_namespaced_pod('hub-%d' % index, namespace)
        term = core.read_persistent_volume(claim.spec.volume_name).spec.node_affinity.required.node_selector_terms[0]
        assert term.match_expressions[0].values == [pod.spec.node_name]


def test_namespace_deletion_with_claims_completes_and_frees_volumes(core, namespaces):
    name = 't-%s' % uuid.uuid4().hex[:10]
    core.create_namespace({'metadata': {'name': name}})
    core.create_namespaced_persistent_volume_claim(name, claim_body('data'))
    poll_until(lambda: create_pod(core, name, 'data'), 30, 'a pod to be accepted in the new namespace')
    poll_until(lambda: core.read_namespaced_pod('p', name).status.phase == 'Running', 60, 'pod running')
    volume_name = bound_claim(core, name, 'data').spec.volume_name
    namespaces.delete_and_wait(name, 90)
    poll_until(lambda: volume_or_none(core, volume_name) is None, 60, 'the namespace\'s volume to be deleted')


def test_agent_config_check_reports_errors(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(json.dumps({'pools': [{'name': 'gpu', 'count': 1, 'gpus_per_node': 2}]}))
    agent = os.path.join(ROOT, 'tests', 'testbed', 'run_node_agent.py')
    proc = subprocess.run([sys.executable, agent, '--config', str(bad), '--check-config'], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and 'pools[0].gpu_product: must be a non-empty string' in proc.stderr
