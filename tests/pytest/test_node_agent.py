"""Testbed-backed tests of the node agent: nodes, scheduling, pod lifecycle, logs, faults and the played GPU operator.

They wait on the cluster with short polls and bounded timeouts; nothing here asserts on durations.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import yaml

kubernetes = pytest.importorskip('kubernetes')
from kubernetes import client  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CRD_FILE = os.path.join(ROOT, 'tests', 'testbed', 'charts', 'gpu-operator', 'crds', 'nvidia.com_clusterpolicies.yaml')
FAULTS = 'testbed.mlops.platform/faults'
GPU_NODE = 'gpu-1'
OPERATOR_NS = 'gpu-operator'
GPU_TOLERATION = {'key': 'nvidia.com/gpu', 'operator': 'Exists', 'effect': 'NoSchedule'}
CUDA_IMAGE = 'nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0'


def wait_for(predicate, timeout=60.0, what='condition'):
    """Poll ``predicate`` every 0.25 s until it returns a truthy value, which is returned; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.25)
    pytest.fail('timed out waiting for %s (last value: %r)' % (what, last))


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
    wait_for(lambda: ready_status(node(core, GPU_NODE)) == 'True', 30, 'the node to recover')


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
    return wait_for(done, timeout, 'job %s to finish' % job)


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
    wait_for(lambda: (apps.read_namespaced_deployment('trainer', namespace).status.ready_replicas or 0) == 2, 60, 'trainer ready')
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
    wait_for(lambda: (apps.read_namespaced_deployment('web', namespace).status.ready_replicas or 0) == 4, 60, 'web ready')
    nodes = {p.spec.node_name for p in core.list_namespaced_pod(namespace, label_selector='app=web').items}
    assert nodes and nodes <= {'system-0', 'system-1'}


def test_job_succeeds_and_its_log_says_passed(k8s, core, namespace):
    batch = client.BatchV1Api(k8s)
    batch.create_namespaced_job(namespace, job_body('vadd'))
    pod = finished_job_pod(core, namespace, 'vadd')
    assert pod.status.phase == 'Succeeded'
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == 'Completed'
    wait_for(lambda: (batch.read_namespaced_job('vadd', namespace).status.succeeded or 0) == 1, 30, 'job succeeded')
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


def create_pod(core, namespace):
    """Create a bare pod; False while the namespace's service account token is not there yet."""
    try:
        core.create_namespaced_pod(namespace, {'metadata': {'name': 'p'}, 'spec': {'containers': [{'name': 'c', 'image': 'busybox'}]}})
        return True
    except client.ApiException as exc:
        if exc.status == 500 or (exc.status == 403 and 'serviceaccount' in (exc.body or '')):
            return False
        raise


def test_namespace_deletion_completes(core):
    name = 't-%s' % uuid.uuid4().hex[:10]
    core.create_namespace({'metadata': {'name': name}})
    wait_for(lambda: create_pod(core, name), 30, 'a pod to be accepted in the new namespace')
    wait_for(lambda: core.read_namespaced_pod('p', name).status.phase == 'Running', 30, 'pod running')
    core.delete_namespace(name)

    def gone():
        try:
            core.read_namespace(name)
            return False
        except client.ApiException as exc:
            return exc.status == 404
    wait_for(gone, 90, 'namespace %s to be deleted' % name)


# ------------------------------------------------------------------------------------------ runtime faults

def test_allocatable_faults_are_visible_and_reversible(core, gpu_node):
    capacity = node(core, gpu_node)['status']['capacity']['nvidia.com/gpu']
    set_faults(core, gpu_node, ['gpu-allocatable-zero'])
    wait_for(lambda: gpu_allocatable(node(core, gpu_node)) == 0, 15, 'allocatable 0')
    assert node(core, gpu_node)['status']['capacity']['nvidia.com/gpu'] == capacity
    set_faults(core, gpu_node, ['gpu-allocatable-partial'])
    wait_for(lambda: gpu_allocatable(node(core, gpu_node)) == int(capacity) - 1, 15, 'allocatable capacity-1')
    set_faults(core, gpu_node, [])
    wait_for(lambda: gpu_allocatable(node(core, gpu_node)) == int(capacity), 15, 'allocatable restored')


def test_not_ready_fault_is_visible_and_reversible(core, gpu_node):
    set_faults(core, gpu_node, ['not-ready'])
    body = wait_for(lambda: node_if_ready(core, gpu_node, 'False'), 15, 'node NotReady')
    reason = next(c['reason'] for c in body['status']['conditions'] if c['type'] == 'Ready')
    assert reason == 'KubeletNotReady'
    assert any(t['key'] == 'node.kubernetes.io/not-ready' for t in body['spec']['taints'])
    set_faults(core, gpu_node, [])
    body = wait_for(lambda: node_if_ready(core, gpu_node, 'True'), 15, 'node Ready again')
    assert not any(t['key'] == 'node.kubernetes.io/not-ready' for t in body['spec']['taints'])


# ------------------------------------------------------------------------------------------ GPU operator

def ensure_crd(k8s):
    """Install the stand-in chart's ClusterPolicy CRD when the cluster does not have it."""
    ext = client.ApiextensionsV1Api(k8s)
    try:
        ext.read_custom_resource_definition('clusterpolicies.nvidia.com')
        return
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    with open(CRD_FILE, encoding='utf-8') as handle:
        ext.create_custom_resource_definition(yaml.safe_load(handle))
    wait_for(lambda: any(c.type == 'Established' and c.status == 'True'
                         for c in ext.read_custom_resource_definition('clusterpolicies.nvidia.com').status.conditions or []),
             30, 'CRD established')


def policy_body(name, config_name=None):
    """A ClusterPolicy with every operand section the stand-in CRD requires."""
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
    wait_for(lambda: not others() or None, 60, 'other ClusterPolicies to go away') if others() else None
    name = 't-policy-%s' % uuid.uuid4().hex[:6]
    yield name
    try:
        custom.delete_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    apps = client.AppsV1Api(k8s)
    wait_for(lambda: not apps.list_namespaced_daemon_set(OPERATOR_NS, label_selector='app.kubernetes.io/managed-by=gpu-operator').items,
             60, 'operand DaemonSets to be removed')


def policy_state(custom, name):
    """status.state of a ClusterPolicy."""
    return (custom.get_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', name).get('status') or {}).get('state')


def test_cluster_policy_brings_operands_gfd_labels_and_ready_state(k8s, core, custom, cluster_policy):
    custom.create_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', policy_body(cluster_policy))
    wait_for(lambda: policy_state(custom, cluster_policy) == 'ready', 90, 'ClusterPolicy ready')
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
    wait_for(lambda: policy_state(custom, cluster_policy) == 'notReady', 30, 'forced notReady')


def test_gfd_and_operand_faults_are_visible_and_reversible(k8s, core, custom, cluster_policy, gpu_node):
    custom.create_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', policy_body(cluster_policy))
    wait_for(lambda: policy_state(custom, cluster_policy) == 'ready', 90, 'ClusterPolicy ready')

    def labels():
        return node(core, gpu_node)['metadata']['labels']
    set_faults(core, gpu_node, ['mig-invalid'])
    wait_for(lambda: labels().get('nvidia.com/gpu.product') == 'NVIDIA-A100-SXM4-80GB-MIG-INVALID', 15, 'MIG-INVALID product')
    assert labels()['nvidia.com/mig.config.state'] == 'failed'
    set_faults(core, gpu_node, ['no-gfd-labels'])
    wait_for(lambda: 'nvidia.com/gpu.product' not in labels(), 15, 'GFD labels removed')
    set_faults(core, gpu_node, ['operand-not-ready'])
    apps = client.AppsV1Api(k8s)
    wait_for(lambda: apps.read_namespaced_daemon_set('nvidia-device-plugin-daemonset', OPERATOR_NS).status.number_ready == 1, 30,
             'operand numberReady below desired')
    pod = [p for p in core.list_namespaced_pod(OPERATOR_NS, label_selector='app=nvidia-device-plugin-daemonset').items
           if p.spec.node_name == gpu_node][0]
    assert pod.status.phase == 'Pending' and pod.status.init_container_statuses[0].state.waiting.reason == 'PodInitializing'
    wait_for(lambda: policy_state(custom, cluster_policy) == 'notReady', 30, 'operator notReady while an operand is not ready')
    set_faults(core, gpu_node, [])
    wait_for(lambda: labels().get('nvidia.com/gpu.product') == 'NVIDIA-A100-SXM4-80GB', 15, 'GFD labels back')
    wait_for(lambda: policy_state(custom, cluster_policy) == 'ready', 60, 'operator ready again')


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
        wait_for(lambda: gpu_allocatable(node(core, 'gpu-0')) == 16, 60, 'allocatable 4 GPUs x 4 replicas')
        wait_for(lambda: node(core, 'gpu-0')['metadata']['labels'].get('nvidia.com/gpu.replicas') == '4', 30, 'replicas label')
        labels = node(core, 'gpu-0')['metadata']['labels']
        assert labels['nvidia.com/gpu.sharing-strategy'] == 'time-slicing'
        assert labels['nvidia.com/gpu.product'] == 'NVIDIA-A100-SXM4-80GB-SHARED'
        sharing['sharing']['timeSlicing']['resources'][0]['replicas'] = 2
        core.patch_namespaced_config_map(config_name, OPERATOR_NS, {'data': {'any': yaml.safe_dump(sharing)}})
        wait_for(lambda: gpu_allocatable(node(core, 'gpu-0')) == 8, 30, 'allocatable follows the ConfigMap change')
        core.patch_node('gpu-0', {'metadata': {'labels': {'nvidia.com/device-plugin.config': 'missing-key'}}})
        wait_for(lambda: gpu_allocatable(node(core, 'gpu-0')) == 4, 30, 'node label selects another (absent) config')
    finally:
        core.patch_node('gpu-0', {'metadata': {'labels': {'nvidia.com/device-plugin.config': None}}})
        core.delete_namespaced_config_map(config_name, OPERATOR_NS)
    custom.delete_cluster_custom_object('nvidia.com', 'v1', 'clusterpolicies', cluster_policy)
    wait_for(lambda: gpu_allocatable(node(core, 'gpu-0')) == 4 and 'nvidia.com/gpu.replicas' not in node(core, 'gpu-0')['metadata']['labels'],
             30, 'sharing and GFD labels gone with the ClusterPolicy')


def test_agent_config_check_reports_errors(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(json.dumps({'pools': [{'name': 'gpu', 'count': 1, 'gpus_per_node': 2}]}))
    agent = os.path.join(ROOT, 'tests', 'testbed', 'node_agent.py')
    proc = subprocess.run([sys.executable, agent, '--config', str(bad), '--check-config'], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and 'pools[0].gpu_product: must be a non-empty string' in proc.stderr
