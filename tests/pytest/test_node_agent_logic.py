"""Unit tests of the node agent's pure logic (no cluster needed)."""

import os
import ssl
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from node_agent import agent, config, gpu_operator, kube, logs, model, pods, volumes

POOLS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'testbed', 'pools')
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
GPU_POOL = {'name': 'gpu', 'count': 2, 'gpus_per_node': 4, 'gpu_product': 'NVIDIA-A100-SXM4-80GB', 'gpu_memory_mib': 81920,
            'taints': ['nvidia.com/gpu=true:NoSchedule'], 'labels': {'node-type': 'ai'}, 'cpu': '96', 'memory': '1800Gi'}
READY_OPERATOR = model.OperatorView(present=True, gfd_active=True, ready=True)


def pool(**overrides):
    """A validated GPU pool with overrides."""
    return config.parse_config({'pools': [dict(GPU_POOL, **overrides)]}).pools[0]


def spec(**overrides):
    """NodeSpec of the first node of a GPU pool."""
    return model.NodeSpec('gpu-0', pool(**overrides), 0)


# ------------------------------------------------------------------------------------------ config

def test_default_config_matches_the_documented_layout():
    cfg = config.load_config(os.path.join(POOLS_DIR, 'default.yaml'))
    nodes = cfg.nodes()
    assert sorted(nodes) == ['gpu-0', 'gpu-1', 'system-0', 'system-1']
    gpu = nodes['gpu-0'][0]
    assert gpu.gpus_per_node == 4 and gpu.gpu_product == 'NVIDIA-A100-SXM4-80GB'
    assert [t.as_dict() for t in gpu.taints] == [{'key': 'nvidia.com/gpu', 'value': 'true', 'effect': 'NoSchedule'}]
    assert dict(gpu.labels)['node-type'] == 'ai' and dict(gpu.labels)['accelerator'] == 'nvidia-gpu'
    system = nodes['system-0'][0]
    assert not system.is_gpu and system.taints == ()
    assert cfg.operator.namespace == 'gpu-operator'


def test_scale_config_has_a_thousand_gpu_nodes():
    cfg = config.load_config(os.path.join(POOLS_DIR, 'scale-1000.yaml'))
    assert sum(1 for node_pool, _index in cfg.nodes().values() if node_pool.is_gpu) == 1000


@pytest.mark.parametrize('data, message', [
    ({}, 'pools: must be a non-empty list'),
    ({'pools': [dict(GPU_POOL, colour='red')]}, 'unknown key(s) colour'),
    ({'pools': [dict(GPU_POOL, count=-1)]}, 'pools[0].count: must be >= 0'),
    ({'pools': [dict(GPU_POOL, count='2')]}, 'pools[0].count: must be an integer'),
    ({'pools': [dict(GPU_POOL, name='GPU_Pool')]}, 'pools[0].name: must be a lowercase DNS label'),
    ({'pools': [GPU_POOL, GPU_POOL]}, 'duplicate pool name(s): gpu'),
    ({'pools': [dict(GPU_POOL, gpu_product=None)]}, 'pools[0].gpu_product: must be a non-empty string'),
    ({'pools': [dict(GPU_POOL, gpu_memory_mib=0)]}, 'gpu_memory_mib: is required'),
    ({'pools': [{'name': 'cpu', 'count': 1, 'gpu_product': 'X'}]}, 'gpu_product and mig need gpus_per_node > 0'),
    ({'pools': [dict(GPU_POOL, taints=['nvidia.com/gpu=true:Sometimes'])]}, "taint effect 'Sometimes'"),
    ({'pools': [dict(GPU_POOL, taints=['no-effect'])]}, 'must look like key=value:Effect'),
    ({'pools': [dict(GPU_POOL, memory='lots')]}, 'pools[0].memory: must be a Kubernetes quantity'),
    ({'pools': [dict(GPU_POOL, faults=['gpu-on-fire'])]}, "unknown fault 'gpu-on-fire'"),
    ({'pools': [dict(GPU_POOL, mig={'strategy': 'single', 'profiles': {'1g.10gb': 7, '2g.20gb': 3}})]}, 'exactly one profile'),
    ({'pools': [dict(GPU_POOL, mig={'strategy': 'mixed', 'profiles': {'big': 1}})]}, "MIG profile 'big'"),
    ({'pools': [dict(GPU_POOL, mig={'strategy': 'split', 'profiles': {'1g.10gb': 1}})]}, 'mig.strategy: must be one of single, mixed'),
    ({'pools': [GPU_POOL], 'node_faults': {'gpu-9': ['smoke-fail']}}, "node 'gpu-9' is not produced by any pool"),
    ({'pools': [GPU_POOL], 'operator': {'state': 'broken'}}, 'operator.state: must be one of ready, notReady'),
    ({'pools': [GPU_POOL], 'pods': {'job_duration_seconds': -1}}, 'pods.job_duration_seconds: must be a non-negative number'),
    ({'pools': [GPU_POOL], 'storage': {'size': '1Gi'}}, 'storage: unknown key(s) size'),
    ({'pools': [GPU_POOL], 'storage': {'class_name': 'Fast_SSD'}}, 'storage.class_name: must be a lowercase DNS subdomain'),
    ({'pools': [GPU_POOL], 'storage': {'class_name': ''}}, 'storage.class_name: must be a non-empty string'),
    ({'pools': [GPU_POOL], 'storage': {'default': 'yes'}}, 'storage.default: must be a boolean'),
    ({'pools': [GPU_POOL], 'storage': {'binding_mode': 'Lazy'}}, 'storage.binding_mode: must be one of WaitForFirstConsumer, Immediate'),
    ({'pools': [GPU_POOL], 'storage': {'reclaim_policy': 'Recycle'}}, 'storage.reclaim_policy: must be one of Delete, Retain'),
    ({'pools': [GPU_POOL], 'storage': ['standard']}, 'storage: must be a mapping'),
    ({'pools': [GPU_POOL, dict(GPU_POOL, name='gpu-1', count=1), dict(GPU_POOL, name='gpu', count=1)]}, 'duplicate pool name'),
])
def test_invalid_configs_are_rejected_with_precise_messages(data, message):
    with pytest.raises(config.ConfigError) as info:
        config.parse_config(data)
    assert message in str(info.value)


def test_load_config_reports_the_file_and_yaml_errors(tmp_path):
    broken = tmp_path / 'broken.yaml'
    broken.write_text('pools: [\n')
    with pytest.raises(config.ConfigError, match='broken.yaml: cannot read configuration'):
        config.load_config(str(broken))


def test_node_faults_merge_with_pool_faults():
    cfg = config.parse_config({'pools': [dict(GPU_POOL, faults=['no-gfd-labels'])], 'node_faults': {'gpu-1': ['smoke-fail']}})
    gpu = cfg.pools[0]
    assert cfg.faults_for('gpu-0', gpu) == ('no-gfd-labels',)
    assert cfg.faults_for('gpu-1', gpu) == ('no-gfd-labels', 'smoke-fail')


def test_taint_mapping_form_and_mig_profile_slices():
    assert config.parse_taint('t', {'key': 'k', 'effect': 'NoExecute'}).as_dict() == {'key': 'k', 'effect': 'NoExecute'}
    assert config.mig_profile_slices('3g.40gb') == (3, 3, 40)
    assert config.mig_profile_slices('1c.3g.40gb') == (1, 3, 40)


# ------------------------------------------------------------------------------------------ node rendering

def test_gpu_node_object_has_resources_addresses_taints_and_kubelet_port():
    node_spec = spec()
    desired = model.desired_node(node_spec, model.NO_OPERATOR, frozenset())
    body = model.node_object(node_spec, desired, 10250, NOW)
    status = body['status']
    assert status['capacity']['nvidia.com/gpu'] == '4' and status['allocatable']['nvidia.com/gpu'] == '4'
    assert status['capacity']['cpu'] == '96' and status['capacity']['pods'] == '110'
    assert {'type': 'InternalIP', 'address': '127.0.0.1'} in status['addresses']
    assert {'type': 'Hostname', 'address': 'gpu-0'} in status['addresses']
    assert status['daemonEndpoints']['kubeletEndpoint']['Port'] == 10250
    assert status['nodeInfo']['kubeletVersion'] == 'v1.20.2'
    assert [c['status'] for c in status['conditions'] if c['type'] == 'Ready'] == ['True']
    assert body['spec']['taints'] == [{'key': 'nvidia.com/gpu', 'value': 'true', 'effect': 'NoSchedule'}]
    labels = body['metadata']['labels']
    assert labels[model.MANAGED_LABEL] == 'true' and labels['node-type'] == 'ai' and labels['kubernetes.io/hostname'] == 'gpu-0'
    assert not any(key.startswith('nvidia.com/') for key in labels), 'no GFD labels without the operator'


def test_cpu_node_has_no_gpu_resource_or_taint():
    cpu = model.NodeSpec('system-0', config.parse_config({'pools': [{'name': 'system', 'count': 1}]}).pools[0], 0)
    desired = model.desired_node(cpu, READY_OPERATOR, frozenset())
    assert 'nvidia.com/gpu' not in desired.capacity and desired.taints == []
    assert 'nvidia.com/gpu.present' not in desired.labels


def test_advertise_before_operator_false_waits_for_a_ready_operator():
    late = spec(advertise_before_operator=False)
    assert 'nvidia.com/gpu' not in model.desired_node(late, model.NO_OPERATOR, frozenset()).capacity
    assert 'nvidia.com/gpu' not in model.desired_node(late, model.OperatorView(True, True, False), frozenset()).capacity
    assert model.desired_node(late, READY_OPERATOR, frozenset()).capacity['nvidia.com/gpu'] == '4'


def test_mig_mixed_resources_and_labels():
    mixed = pool(mig={'strategy': 'mixed', 'profiles': {'1g.10gb': 14, '3g.40gb': 2}})
    capacity = model.gpu_resources(mixed, READY_OPERATOR, frozenset())[0]
    assert capacity == {'nvidia.com/mig-1g.10gb': 14, 'nvidia.com/mig-3g.40gb': 2}
    labels = model.gfd_labels(mixed, model.NO_SHARING, frozenset())
    assert labels['nvidia.com/mig.strategy'] == 'mixed'
    assert labels['nvidia.com/mig-1g.10gb.count'] == '14' and labels['nvidia.com/mig-3g.40gb.slices.gi'] == '3'
    assert labels['nvidia.com/gpu.product'] == 'NVIDIA-A100-SXM4-80GB' and labels['nvidia.com/mig.capable'] == 'true'


def test_mig_single_exposes_instances_as_gpus():
    single = pool(mig={'strategy': 'single', 'profiles': {'1g.10gb': 28}})
    capacity = model.gpu_resources(single, READY_OPERATOR, frozenset())[0]
    assert capacity == {'nvidia.com/gpu': 28}
    labels = model.gfd_labels(single, model.NO_SHARING, frozenset())
    assert labels['nvidia.com/gpu.product'] == 'NVIDIA-A100-SXM4-80GB-MIG-1g.10gb'
    assert labels['nvidia.com/gpu.count'] == '28' and labels['nvidia.com/gpu.memory'] == '10240'


@pytest.mark.parametrize('sharing, resource, count, product', [
    (model.Sharing('time-slicing', 4, False), 'nvidia.com/gpu', 16, 'NVIDIA-A100-SXM4-80GB-SHARED'),
    (model.Sharing('mps', 2, False), 'nvidia.com/gpu', 8, 'NVIDIA-A100-SXM4-80GB-SHARED'),
    (model.Sharing('time-slicing', 3, True), 'nvidia.com/gpu.shared', 12, 'NVIDIA-A100-SXM4-80GB'),
    (model.NO_SHARING, 'nvidia.com/gpu', 4, 'NVIDIA-A100-SXM4-80GB'),
])
def test_sharing_multiplies_capacity_and_labels_the_product(sharing, resource, count, product):
    view = model.OperatorView(True, True, True, sharing)
    capacity, allocatable = model.gpu_resources(pool(), view, frozenset())
    assert capacity == {resource: count} and allocatable == capacity
    labels = model.gfd_labels(pool(), sharing, frozenset())
    assert labels['nvidia.com/gpu.product'] == product
    assert labels['nvidia.com/gpu.replicas'] == str(sharing.replicas)
    assert labels['nvidia.com/gpu.sharing-strategy'] == sharing.strategy
    assert labels['nvidia.com/gpu.count'] == '4'


def test_allocatable_faults_keep_capacity():
    capacity, allocatable = model.gpu_resources(pool(), READY_OPERATOR, frozenset({'gpu-allocatable-zero'}))
    assert capacity == {'nvidia.com/gpu': 4} and allocatable == {'nvidia.com/gpu': 0}
    capacity, allocatable = model.gpu_resources(pool(), READY_OPERATOR, frozenset({'gpu-allocatable-partial'}))
    assert capacity == {'nvidia.com/gpu': 4} and allocatable == {'nvidia.com/gpu': 3}


def test_gfd_labels_follow_the_operator_and_faults():
    node_spec = spec()
    deploying = model.node_labels(node_spec, model.OperatorView(True, False, False), frozenset())
    assert deploying['nvidia.com/gpu.present'] == 'true' and 'nvidia.com/gpu.product' not in deploying
    labels = model.node_labels(node_spec, READY_OPERATOR, frozenset())
    assert labels['nvidia.com/gpu.product'] == 'NVIDIA-A100-SXM4-80GB' and labels['nvidia.com/gpu.family'] == 'ampere'
    assert labels['nvidia.com/cuda.driver.major'] == '550' and labels['nvidia.com/cuda.runtime.major'] == '12'
    assert labels['nvidia.com/gpu.count'] == '4' and labels['nvidia.com/gpu.memory'] == '81920'
    invalid = model.node_labels(node_spec, READY_OPERATOR, frozenset({'mig-invalid'}))
    assert invalid['nvidia.com/gpu.product'] == 'NVIDIA-A100-SXM4-80GB-MIG-INVALID'
    assert invalid['nvidia.com/mig.config.state'] == 'failed' and invalid['nvidia.com/gpu.count'] == '0'
    stripped = model.node_labels(node_spec, READY_OPERATOR, frozenset({'no-gfd-labels'}))
    assert [key for key in stripped if key.startswith('nvidia.com/')] == ['nvidia.com/gpu.present'], 'operands stay scheduled'


def test_requested_mig_config_is_answered_success_failed_or_stuck():
    """mig-manager's nvidia.com/mig.config.state for a node that carries an nvidia.com/mig.config request."""
    node = spec()
    assert model.MIG_CONFIG_STATE_LABEL not in model.node_labels(node, READY_OPERATOR, frozenset())
    requested = model.node_labels(node, READY_OPERATOR, frozenset(), 'all-1g.10gb')
    assert requested[model.MIG_CONFIG_STATE_LABEL] == 'success'
    assert model.node_labels(node, READY_OPERATOR, frozenset({'mig-config-failed'}), 'all-1g.10gb')[model.MIG_CONFIG_STATE_LABEL] == 'failed'
    assert model.node_labels(node, READY_OPERATOR, frozenset({'mig-config-stuck'}), 'all-1g.10gb')[model.MIG_CONFIG_STATE_LABEL] == 'pending'
    assert model.node_labels(node, READY_OPERATOR, frozenset({'mig-invalid'}), 'all-1g.10gb')[model.MIG_CONFIG_STATE_LABEL] == 'failed'
    # Without the operator nobody answers; a CPU node never does.
    assert model.MIG_CONFIG_STATE_LABEL not in model.node_labels(node, model.NO_OPERATOR, frozenset(), 'all-1g.10gb')
    cpu = model.NodeSpec('system-0', config.parse_config({'pools': [{'name': 'system', 'count': 1}]}).pools[0], 0)
    assert model.MIG_CONFIG_STATE_LABEL not in model.node_labels(cpu, READY_OPERATOR, frozenset(), 'all-1g.10gb')


def test_mig_config_request_moves_pending_on_and_keeps_the_users_label():
    """A node the user set to pending with a new request gets the answer patched in; the request label stays."""
    node = spec()
    desired = model.desired_node(node, READY_OPERATOR, frozenset(), 'all-3g.40gb')
    observed = model.node_object(node, model.desired_node(node, READY_OPERATOR, frozenset()), 10250, NOW)
    observed['metadata']['labels'].update({model.MIG_CONFIG_LABEL: 'all-3g.40gb', model.MIG_CONFIG_STATE_LABEL: 'pending'})
    meta_patch, _status = model.node_patches(desired, observed, NOW, 60)
    assert meta_patch['metadata']['labels'] == {model.MIG_CONFIG_STATE_LABEL: 'success'}
    stuck = model.desired_node(node, READY_OPERATOR, frozenset({'mig-config-stuck'}), 'all-3g.40gb')
    assert model.node_patches(stuck, observed, NOW, 60)[0] is None
    # The request going away takes the answer with it (GFD-owned), never the request label itself.
    cleared = model.desired_node(node, READY_OPERATOR, frozenset())
    observed['metadata']['labels'][model.MIG_CONFIG_STATE_LABEL] = 'success'
    labels = model.node_patches(cleared, observed, NOW, 60)[0]['metadata']['labels']
    assert labels == {model.MIG_CONFIG_STATE_LABEL: None}
    assert 'mig-config-failed' in config.FAULTS and 'mig-config-stuck' in config.FAULTS


def test_gpu_family_table():
    assert model.gpu_family('NVIDIA-H100-80GB-HBM3') == ('hopper', 9, 0)
    assert model.gpu_family('Tesla-T4') == ('turing', 7, 5)
    assert model.gpu_family('Mystery') == ('unknown', 0, 0)


def observed_from(node_spec, view=model.NO_OPERATOR, faults=frozenset()):
    """The node as the API would return it after registration."""
    return model.node_object(node_spec, model.desired_node(node_spec, view, faults), 10250, NOW)


def test_no_patch_when_the_node_already_matches():
    node_spec = spec()
    observed = observed_from(node_spec)
    observed['status']['capacity']['memory'] = '1932735283200'  # same quantity, other spelling
    assert model.node_patches(model.desired_node(node_spec, model.NO_OPERATOR, frozenset()), observed, NOW, 60) == (None, None)


def test_not_ready_fault_patches_condition_and_taint_and_recovers():
    node_spec = spec()
    observed = observed_from(node_spec)
    meta, status = model.node_patches(model.desired_node(node_spec, model.NO_OPERATOR, frozenset({'not-ready'})), observed, NOW, 60)
    ready = [c for c in status['status']['conditions'] if c['type'] == 'Ready'][0]
    assert ready['status'] == 'False' and ready['reason'] == 'KubeletNotReady'
    assert {'key': 'node.kubernetes.io/not-ready', 'effect': 'NoSchedule'} in meta['spec']['taints']
    faulty = observed_from(node_spec, faults=frozenset({'not-ready'}))
    faulty['spec']['taints'].append({'key': 'someone-else', 'effect': 'NoSchedule'})
    meta, status = model.node_patches(model.desired_node(node_spec, model.NO_OPERATOR, frozenset()), faulty, NOW, 60)
    assert sorted(t['key'] for t in meta['spec']['taints']) == ['nvidia.com/gpu', 'someone-else']
    assert [c['status'] for c in status['status']['conditions'] if c['type'] == 'Ready'] == ['True']


def test_label_patch_removes_gfd_labels_but_keeps_user_labels():
    node_spec = spec()
    observed = observed_from(node_spec, READY_OPERATOR)
    observed['metadata']['labels'].update({'nvidia.com/device-plugin.config': 'a100', 'team': 'ml', 'nvidia.com/gpu.deploy.driver': 'false'})
    meta = model.node_patches(model.desired_node(node_spec, READY_OPERATOR, frozenset({'no-gfd-labels'})), observed, NOW, 60)[0]
    labels = meta['metadata']['labels']
    assert labels['nvidia.com/gpu.product'] is None and labels['nvidia.com/cuda.driver.major'] is None
    assert 'nvidia.com/gpu.present' not in labels
    assert 'nvidia.com/device-plugin.config' not in labels and 'team' not in labels and 'nvidia.com/gpu.deploy.driver' not in labels


def test_resource_patch_removes_a_renamed_resource():
    node_spec = spec()
    renamed = model.OperatorView(True, True, True, model.Sharing('time-slicing', 2, True))
    observed = observed_from(node_spec, renamed)
    status = model.node_patches(model.desired_node(node_spec, READY_OPERATOR, frozenset()), observed, NOW, 60)[1]
    assert status['status']['capacity']['nvidia.com/gpu.shared'] is None
    assert status['status']['capacity']['nvidia.com/gpu'] == '4'


def test_heartbeat_is_sent_only_when_due():
    node_spec = spec()
    observed = observed_from(node_spec)
    desired = model.desired_node(node_spec, model.NO_OPERATOR, frozenset())
    assert model.node_patches(desired, observed, NOW + timedelta(seconds=30), 60)[1] is None
    status = model.node_patches(desired, observed, NOW + timedelta(seconds=61), 60)[1]
    ready = [c for c in status['status']['conditions'] if c['type'] == 'Ready'][0]
    assert ready['lastHeartbeatTime'] == '2026-11-23T12:01:01Z' and ready['lastTransitionTime'] == '2026-11-23T12:00:00Z'


def test_parse_faults_and_time_helpers():
    known, unknown = model.parse_faults(' smoke-fail, ,bogus,not-ready', config.FAULTS)
    assert known == {'smoke-fail', 'not-ready'} and unknown == ['bogus']
    assert model.parse_time('2026-11-23T12:00:00.123456Z') == NOW.replace(microsecond=123456)
    assert model.micro_time(NOW) == '2026-11-23T12:00:00.000000Z'


def test_scaled_intervals_stay_cheap_at_a_thousand_nodes():
    assert agent.scaled_intervals(4) == (10.0, 60.0)
    lease, heartbeat = agent.scaled_intervals(1000)
    assert lease == 50.0 and heartbeat == 250.0


# ------------------------------------------------------------------------------------------ operator

POLICY = {'metadata': {'name': 'cluster-policy', 'uid': 'u-1', 'creationTimestamp': '2026-11-23T12:00:00Z'}, 'spec': {}}


def test_enabled_operands_follow_the_policy():
    names = [o.name for o in gpu_operator.enabled_operands({}, mig_configured=False)]
    assert names == ['nvidia-driver-daemonset', 'nvidia-container-toolkit-daemonset', 'nvidia-device-plugin-daemonset',
                     'gpu-feature-discovery', 'nvidia-dcgm-exporter', 'nvidia-operator-validator']
    spec_ = {'driver': {'enabled': False}, 'dcgmExporter': {'enabled': False}}
    names = [o.name for o in gpu_operator.enabled_operands(spec_, mig_configured=True)]
    assert 'nvidia-driver-daemonset' not in names and 'nvidia-dcgm-exporter' not in names and 'nvidia-mig-manager' in names


def test_rendered_daemonset_selects_gpu_nodes_and_is_owned():
    operand = gpu_operator.OPERANDS[2]
    policy = dict(POLICY, spec={'devicePlugin': {'repository': 'reg.example/nv', 'image': 'dp', 'version': 'v9'}})
    body = gpu_operator.render_daemonset(operand, 'gpu-operator', policy)
    pod_spec = body['spec']['template']['spec']
    assert body['metadata']['labels']['app.kubernetes.io/managed-by'] == 'gpu-operator'
    assert body['metadata']['labels']['app'] == operand.name
    assert pod_spec['nodeSelector'] == {'nvidia.com/gpu.present': 'true'}
    assert {'key': 'nvidia.com/gpu', 'operator': 'Exists', 'effect': 'NoSchedule'} in pod_spec['tolerations']
    assert pod_spec['containers'][0]['image'] == 'reg.example/nv/dp:v9'
    assert body['metadata']['ownerReferences'][0]['uid'] == 'u-1'
    assert body['metadata']['annotations'][gpu_operator.HASH_ANNOTATION] != \
        gpu_operator.render_daemonset(operand, 'gpu-operator', POLICY)['metadata']['annotations'][gpu_operator.HASH_ANNOTATION]


TS_CONFIG = yaml.safe_dump({'version': 'v1', 'sharing': {'timeSlicing': {'resources': [{'name': 'nvidia.com/gpu', 'replicas': 4}]}}})
MPS_CONFIG = yaml.safe_dump({'version': 'v1', 'sharing': {'mps': {'renameByDefault': True, 'resources': [{'name': 'nvidia.com/gpu', 'replicas': 2}]}}})


def test_parse_device_plugin_sharing():
    assert gpu_operator.parse_sharing(TS_CONFIG) == model.Sharing('time-slicing', 4, False)
    assert gpu_operator.parse_sharing(MPS_CONFIG) == model.Sharing('mps', 2, True)
    assert gpu_operator.parse_sharing('version: v1\nflags: {migStrategy: none}\n') == model.NO_SHARING
    with pytest.raises(ValueError, match='replicas must be a positive integer'):
        gpu_operator.parse_sharing('sharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 0}]}}')
    with pytest.raises(ValueError, match='not YAML'):
        gpu_operator.parse_sharing('sharing: [')


def test_sharing_selection_by_default_and_node_label():
    configs = gpu_operator.sharing_configs({'data': {'ts': TS_CONFIG, 'mps': MPS_CONFIG, 'bad': 'sharing: ['}})
    assert sorted(configs) == ['mps', 'ts']
    assert gpu_operator.select_sharing(configs, 'ts', None).replicas == 4
    assert gpu_operator.select_sharing(configs, 'ts', 'mps').strategy == 'mps'
    assert gpu_operator.select_sharing(configs, None, None) == model.NO_SHARING
    assert gpu_operator.select_sharing({'only': configs['ts']}, None, None).replicas == 4
    assert gpu_operator.device_plugin_config({'devicePlugin': {'config': {'name': 'cm', 'default': 'ts'}}}) == ('cm', 'ts')


def ds(ready, desired=2, generation=1, observed=1):
    """A DaemonSet with the given status counters."""
    return {'metadata': {'generation': generation},
            'status': {'observedGeneration': observed, 'desiredNumberScheduled': desired, 'numberReady': ready}}


def test_operator_state_transitions():
    wanted = ['a', 'b']
    early = NOW + timedelta(seconds=1)
    late = NOW + timedelta(seconds=10)
    assert gpu_operator.operator_state(POLICY, {'a': ds(2), 'b': ds(2)}, wanted, early, 5, 'ready')[0] == 'notReady'
    state, message = gpu_operator.operator_state(POLICY, {'a': ds(2), 'b': ds(1)}, wanted, late, 5, 'ready')
    assert state == 'notReady' and 'b' in message
    assert gpu_operator.operator_state(POLICY, {'a': ds(2), 'b': ds(2, generation=2)}, wanted, late, 5, 'ready')[0] == 'notReady'
    assert gpu_operator.operator_state(POLICY, {'a': ds(2), 'b': ds(2)}, wanted, late, 5, 'ready')[0] == 'ready'
    assert gpu_operator.operator_state(POLICY, {'a': ds(2), 'b': ds(2)}, wanted, late, 5, 'notReady')[0] == 'notReady'
    forced = dict(POLICY, metadata=dict(POLICY['metadata'], annotations={gpu_operator.STATE_ANNOTATION: 'notReady'}))
    assert gpu_operator.operator_state(forced, {'a': ds(2), 'b': ds(2)}, wanted, late, 5, 'ready') == ('notReady', 'state forced to notReady')


def test_policy_status_body_and_change_detection():
    status = gpu_operator.status_body('ready', 'all operands are ready', 'gpu-operator', None, NOW)
    assert status['state'] == 'ready' and status['namespace'] == 'gpu-operator'
    assert [c['status'] for c in status['conditions'] if c['type'] == 'Ready'] == ['True']
    later = gpu_operator.status_body('ready', 'all operands are ready', 'gpu-operator', status, NOW + timedelta(seconds=5))
    assert not gpu_operator.status_changed(status, later)
    assert gpu_operator.status_changed(status, gpu_operator.status_body('notReady', 'x', 'gpu-operator', status, NOW))


# ------------------------------------------------------------------------------------------ pods

TIMING = config.PodTiming(startup_seconds=1, job_duration_seconds=5)


def make_pod(job=False, operand=False, init=True, **status):
    """A bound pod."""
    meta = {'name': 'p', 'namespace': 'gpu-operator' if operand else 'default', 'uid': 'uid-1', 'labels': {}}
    if job:
        meta['ownerReferences'] = [{'kind': 'Job', 'name': 'j'}]
    if operand:
        meta['labels']['app.kubernetes.io/managed-by'] = 'gpu-operator'
    spec_ = {'nodeName': 'gpu-0', 'containers': [{'name': 'main', 'image': 'nvcr.io/nvidia/cuda:12.4'}]}
    if init:
        spec_['initContainers'] = [{'name': 'setup', 'image': 'busybox'}]
    return {'metadata': meta, 'spec': spec_, 'status': dict({'phase': 'Pending'}, **status)}


def plan(pod, faults=frozenset(), seconds=2, first_seen=NOW):
    """Plan a pod ``seconds`` after it was first seen."""
    return pods.plan_pod(pod, frozenset(faults), 'gpu-operator', TIMING, first_seen, NOW + timedelta(seconds=seconds), '10.244.0.7')


def test_pod_waits_for_startup_then_runs_ready():
    assert plan(make_pod(), seconds=0.25) == pods.PodPlan(None, 0.75)
    status = plan(make_pod()).status
    assert status['phase'] == 'Running' and status['podIP'] == '10.244.0.7' and status['hostIP'] == '127.0.0.1'
    conditions = {c['type']: c['status'] for c in status['conditions']}
    assert conditions == {'Initialized': 'True', 'Ready': 'True', 'ContainersReady': 'True', 'PodScheduled': 'True'}
    main = status['containerStatuses'][0]
    assert main['ready'] and main['restartCount'] == 0 and 'running' in main['state']
    assert main['containerID'].startswith('containerd://') and main['imageID'].startswith('nvcr.io/nvidia/cuda@sha256:')
    assert status['initContainerStatuses'][0]['state']['terminated']['reason'] == 'Completed'
    assert plan(make_pod(**status)) == pods.PodPlan(None, None), 'a running pod is left alone'


def test_job_pod_succeeds_after_its_duration():
    running = plan(make_pod(job=True))
    assert running.status['phase'] == 'Running' and running.recheck_after == pytest.approx(5)
    started = make_pod(job=True, **running.status)
    assert plan(started, seconds=4).status is None
    done = plan(started, seconds=8).status
    assert done['phase'] == 'Succeeded'
    terminated = done['containerStatuses'][0]['state']['terminated']
    assert terminated['exitCode'] == 0 and terminated['reason'] == 'Completed'
    assert plan(make_pod(job=True, **done), seconds=20) == pods.PodPlan(None, None)


def test_job_pod_fails_under_smoke_fail():
    started = make_pod(job=True, **plan(make_pod(job=True)).status)
    failed = plan(started, faults={'smoke-fail'}, seconds=8).status
    assert failed['phase'] == 'Failed'
    assert failed['containerStatuses'][0]['state']['terminated'] == {
        'exitCode': 1, 'reason': 'Error', 'startedAt': '2026-11-23T12:00:02Z', 'finishedAt': '2026-11-23T12:00:08Z',
        'containerID': failed['containerStatuses'][0]['containerID']}


def test_operand_pod_blocks_under_operand_not_ready_and_recovers():
    blocked = plan(make_pod(operand=True), faults={'operand-not-ready'}).status
    assert blocked['phase'] == 'Pending'
    assert blocked['initContainerStatuses'][0]['state'] == {'waiting': {'reason': 'PodInitializing'}}
    assert [c['status'] for c in blocked['conditions'] if c['type'] == 'Ready'] == ['False']
    assert plan(make_pod(operand=True, **blocked), faults={'operand-not-ready'}).status is None
    assert plan(make_pod(operand=True, **blocked)).status['phase'] == 'Running'
    assert plan(make_pod(), faults={'operand-not-ready'}).status['phase'] == 'Running', 'only operand pods are affected'


def test_host_network_pods_use_the_host_ip_and_pod_ips_are_distinct():
    pod = make_pod()
    pod['spec']['hostNetwork'] = True
    assert plan(pod).status['podIP'] == '127.0.0.1'
    assert len({pods.pod_ip(n) for n in range(5000)}) == 5000


def test_deleting_and_finished_pods_are_not_planned():
    deleting = make_pod()
    deleting['metadata']['deletionTimestamp'] = '2026-11-23T12:00:00Z'
    assert plan(deleting) == pods.PodPlan(None, None)
    assert plan(make_pod(phase='Failed')) == pods.PodPlan(None, None)


# ------------------------------------------------------------------------------------------ logs

def test_job_logs_tell_the_outcome():
    job = make_pod(job=True, phase='Succeeded')
    assert logs.container_log(job, 'main', 'A100').rstrip().endswith('Done')
    assert 'Test PASSED' in logs.container_log(job, 'main', 'A100')
    failed = logs.container_log(make_pod(job=True, phase='Failed'), 'main', 'A100')
    assert 'Test FAILED' in failed and 'Test PASSED' not in failed
    running = logs.container_log(make_pod(job=True, phase='Running'), 'main', 'A100')
    assert 'Test' not in running
    assert logs.container_log(make_pod(), 'main', '') == 'container main of pod default/p started on node gpu-0\n'
    assert logs.container_log(make_pod(), 'missing', '') is None


def test_log_options():
    text = 'a\nb\nc\n'
    assert logs.apply_options(text, {'tailLines': ['2']}, None) == 'b\nc\n'
    assert logs.apply_options(text, {'limitBytes': ['3']}, None) == 'a\nb'
    assert logs.apply_options('x\n', {'timestamps': ['true']}, '2026-11-23T12:00:00Z') == '2026-11-23T12:00:00.000000000Z x\n'


def test_log_server_serves_over_tls(tmp_path):
    def lookup(namespace, name, container):
        return ('hello %s/%s/%s\n' % (namespace, name, container), None) if name == 'known' else None
    server = logs.LogServer(0, str(tmp_path), lookup)
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / 'kubelet.crt'))
        base = 'https://127.0.0.1:%d' % server.port
        with urllib.request.urlopen(base + '/containerLogs/ns/known/c?tailLines=1', context=context, timeout=5) as answer:
            assert answer.read() == b'hello ns/known/c\n'
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(base + '/containerLogs/ns/unknown/c', context=context, timeout=5)  # pylint: disable=consider-using-with
        assert info.value.code == 404
    finally:
        server.stop()
    assert logs.ensure_certificate(str(tmp_path)) == (str(tmp_path / 'kubelet.crt'), str(tmp_path / 'kubelet.key'))


# ------------------------------------------------------------------------------------------ machinery

def test_work_queue_deduplicates_and_delays():
    queue = kube.WorkQueue()
    queue.add('a')
    queue.add('a')
    queue.add('b')
    assert queue.get() == 'a'
    queue.add('a')  # re-added while processing: handed out again after done
    assert queue.get() == 'b'
    queue.done('b')
    queue.done('a')
    assert queue.get() == 'a'
    queue.done('a')
    queue.add_after('c', 0.05)
    assert queue.get() == 'c'
    queue.shutdown()
    assert queue.get() is None


def test_object_key():
    assert kube.object_key({'metadata': {'name': 'n'}}) == 'n'
    assert kube.object_key({'metadata': {'name': 'p', 'namespace': 'ns'}}) == 'ns/p'


def test_operator_state_for_node_picks_sharing_by_label():
    state = agent.OperatorState(True, True, True, (('mps', model.Sharing('mps', 2, False)), ('ts', model.Sharing('time-slicing', 4, False))), 'ts')
    assert state.for_node(None).sharing.replicas == 4
    assert state.for_node('mps').sharing.strategy == 'mps'
    assert agent.OperatorState().for_node('ts').sharing == model.NO_SHARING


# ------------------------------------------------------------------------------------------ volumes

CLAIM_UID = '0b7f6f4e-2c1a-4d5e-9f00-123456789abc'


def storage_class(name='standard', binding='WaitForFirstConsumer', reclaim='Delete', provisioner=volumes.PROVISIONER):
    """A StorageClass as the API returns it."""
    return {'metadata': {'name': name}, 'provisioner': provisioner, 'reclaimPolicy': reclaim, 'volumeBindingMode': binding}


def claim(class_name='standard', provisioner=volumes.PROVISIONER, node='gpu-1', **spec):
    """A pending claim as the PV controller leaves it for an external provisioner."""
    annotations = {}
    if provisioner:
        annotations['volume.beta.kubernetes.io/storage-provisioner'] = provisioner
    if node:
        annotations[volumes.SELECTED_NODE_ANNOTATION] = node
    body = {'metadata': {'name': 'data', 'namespace': 'ns1', 'uid': CLAIM_UID, 'annotations': annotations},
            'spec': dict({'accessModes': ['ReadWriteOnce'], 'resources': {'requests': {'storage': '5Gi'}}}, **spec)}
    if class_name is not None:
        body['spec']['storageClassName'] = class_name
    return body


def test_storage_defaults_keep_existing_configs_working():
    storage = config.load_config(os.path.join(POOLS_DIR, 'default.yaml')).storage
    assert storage == config.StorageConfig('standard', True, 'WaitForFirstConsumer', 'Delete')
    options = {'class_name': 'fast.ssd', 'default': False, 'binding_mode': 'Immediate', 'reclaim_policy': 'Retain'}
    custom = config.parse_config({'pools': [GPU_POOL], 'storage': options}).storage
    assert custom == config.StorageConfig('fast.ssd', False, 'Immediate', 'Retain')


def test_storage_class_object_and_reconcile_actions():
    desired = volumes.storage_class_object(config.StorageConfig())
    assert desired['provisioner'] == 'testbed.mlops.platform/hostpath'
    assert desired['metadata']['annotations'] == {'storageclass.kubernetes.io/is-default-class': 'true'}
    assert desired['reclaimPolicy'] == 'Delete' and desired['volumeBindingMode'] == 'WaitForFirstConsumer'
    not_default = volumes.storage_class_object(config.StorageConfig(default=False))
    assert not_default['metadata']['annotations']['storageclass.kubernetes.io/is-default-class'] == 'false'
    assert volumes.class_action(None, desired) == ('create', None)
    assert volumes.class_action(desired, desired) == ('none', None)
    assert volumes.class_action(not_default, desired) == (
        'patch', {'metadata': {'annotations': {'storageclass.kubernetes.io/is-default-class': 'true'}}})
    immediate = volumes.storage_class_object(config.StorageConfig(binding_mode='Immediate'))
    assert volumes.class_action(immediate, desired) == ('recreate', None)
    assert volumes.class_action(dict(desired, parameters={'type': 'ssd'}), desired) == ('recreate', None)
    foreign = dict(desired, metadata={'name': 'standard'}, provisioner='kubernetes.io/azure-disk')
    assert volumes.class_action(foreign, desired) == ('foreign', None)


@pytest.mark.parametrize('body, storage, reason', [
    (claim(), storage_class(), ''),
    (claim(node=None), storage_class(binding='Immediate'), ''),
    (claim(node=None), storage_class(), 'waiting for the scheduler'),
    (claim(provisioner=None), storage_class(), 'not (yet) handed'),
    (claim(provisioner='disk.csi.azure.com'), storage_class(), 'not (yet) handed'),
    (claim(), None, "storage class 'standard' not found"),
    (claim(), storage_class(provisioner='kubernetes.io/azure-disk'), "has provisioner 'kubernetes.io/azure-disk'"),
    (claim(volumeName='pvc-x'), storage_class(), 'already bound to pvc-x'),
    (claim(resources={}), storage_class(), 'no storage request'),
    (dict(claim(), metadata=dict(claim()['metadata'], deletionTimestamp='2026-11-23T12:00:00Z')), storage_class(), 'being deleted'),
])
def test_claim_selection(body, storage, reason):
    plan = volumes.plan_claim(body, storage)
    assert plan.provision == (reason == '')
    assert reason in plan.reason


def test_claim_class_and_provisioner_annotations():
    legacy = claim(class_name=None, provisioner=None)
    legacy['metadata']['annotations'][volumes.BETA_CLASS_ANNOTATION] = 'standard'
    legacy['metadata']['annotations']['volume.kubernetes.io/storage-provisioner'] = volumes.PROVISIONER
    assert volumes.claim_class_name(legacy) == 'standard'
    assert volumes.claim_provisioner(legacy) == volumes.PROVISIONER
    assert volumes.plan_claim(legacy, storage_class()).provision
    assert volumes.claim_class_name(claim(class_name='')) is None
    assert volumes.is_our_class(storage_class()) and not volumes.is_our_class(None)


def test_rendered_volume_is_pre_bound_with_capacity_modes_path_and_node_affinity():
    body = claim(accessModes=['ReadWriteOnce', 'ReadOnlyMany'])
    pv = volumes.render_volume(body, storage_class(), '/state/volumes', 'gpu-1')
    name = 'pvc-' + CLAIM_UID
    assert pv['metadata']['name'] == volumes.volume_name(body) == name
    assert pv['metadata']['annotations'] == {'pv.kubernetes.io/provisioned-by': 'testbed.mlops.platform/hostpath'}
    spec_ = pv['spec']
    assert spec_['capacity'] == {'storage': '5Gi'} and spec_['accessModes'] == ['ReadWriteOnce', 'ReadOnlyMany']
    assert spec_['claimRef'] == {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'namespace': 'ns1', 'name': 'data', 'uid': CLAIM_UID}
    assert spec_['storageClassName'] == 'standard' and spec_['persistentVolumeReclaimPolicy'] == 'Delete'
    assert spec_['hostPath']['path'] == '/state/volumes/' + name and spec_['volumeMode'] == 'Filesystem'
    terms = spec_['nodeAffinity']['required']['nodeSelectorTerms']
    assert terms == [{'matchExpressions': [{'key': 'kubernetes.io/hostname', 'operator': 'In', 'values': ['gpu-1']}]}]


def test_immediate_and_retain_classes_render_without_affinity_and_keep_the_policy():
    pv = volumes.render_volume(claim(node=None), storage_class('keep', binding='Immediate', reclaim='Retain'), '/v', None)
    assert 'nodeAffinity' not in pv['spec']
    assert pv['spec']['persistentVolumeReclaimPolicy'] == 'Retain' and pv['spec']['storageClassName'] == 'keep'


def released(policy='Delete', phase='Released', ours=True, path=None):
    """A PV as the PV controller leaves it once its claim is gone."""
    name = 'pvc-' + CLAIM_UID
    annotations = {volumes.PROVISIONED_BY_ANNOTATION: volumes.PROVISIONER if ours else 'kubernetes.io/azure-disk'}
    return {'metadata': {'name': name, 'annotations': annotations},
            'spec': {'persistentVolumeReclaimPolicy': policy, 'hostPath': {'path': path or '/state/volumes/' + name}},
            'status': {'phase': phase}}


def test_only_released_delete_volumes_of_ours_are_deleted():
    assert volumes.should_delete(released())
    assert not volumes.should_delete(released(policy='Retain'))
    assert not volumes.should_delete(released(phase='Bound'))
    assert not volumes.should_delete(released(ours=False))
    deleting = released()
    deleting['metadata']['deletionTimestamp'] = '2026-11-23T12:00:00Z'
    assert not volumes.should_delete(deleting)


def test_only_directories_the_provisioner_made_are_removed():
    name = 'pvc-' + CLAIM_UID
    assert volumes.owned_directory(released(), '/state/volumes/') == '/state/volumes/' + name
    assert volumes.owned_directory(released(path='/etc'), '/state/volumes') is None
    assert volumes.owned_directory(released(path='/state/volumes/../../etc/' + name), '/state/volumes') is None
    assert volumes.owned_directory(released(path='/state/volumes/other'), '/state/volumes') is None
    assert volumes.owned_directory(released(ours=False), '/state/volumes') is None
    entries = [name, 'pvc-11111111-2222-3333-4444-555555555555', 'notes.txt', 'pvc-../x']
    assert volumes.orphan_directories(entries, [name]) == ['pvc-11111111-2222-3333-4444-555555555555']


def test_claim_event_names_the_claim():
    event = volumes.claim_event(claim(), 'ProvisioningSucceeded', 'done', '2026-11-23T12:00:00Z')
    assert event['involvedObject']['uid'] == CLAIM_UID and event['metadata']['namespace'] == 'ns1'
    assert event['type'] == 'Normal' and event['source']['component'] == volumes.PROVISIONER
    assert volumes.claim_event(claim(), 'ProvisioningFailed', 'x', '2026-11-23T12:00:00Z', warning=True)['type'] == 'Warning'
