"""Pure logic of the played NVIDIA GPU operator: operand DaemonSets, device-plugin sharing config and ClusterPolicy state."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Mapping, Optional, Tuple

import yaml

from .model import NO_SHARING, Sharing, parse_time, rfc3339

GROUP_VERSION = 'nvidia.com/v1'
CLUSTERPOLICY_PATH = '/apis/nvidia.com/v1/clusterpolicies'
MANAGED_BY = 'gpu-operator'
STATE_ANNOTATION = 'testbed.mlops.platform/state'
HASH_ANNOTATION = 'testbed.mlops.platform/spec-hash'
GPU_TAINT = 'nvidia.com/gpu'
NODE_SELECTOR = {'nvidia.com/gpu.present': 'true'}


@dataclass(frozen=True)
class Operand:
    """An operand DaemonSet: its name, the ClusterPolicy spec key that enables it and its default image."""

    name: str
    spec_key: str
    image: str
    version: str
    mig_only: bool = False


OPERANDS = (
    Operand('nvidia-driver-daemonset', 'driver', 'nvcr.io/nvidia/driver', '550.90.07'),
    Operand('nvidia-container-toolkit-daemonset', 'toolkit', 'nvcr.io/nvidia/k8s/container-toolkit', 'v1.16.2-ubuntu20.04'),
    Operand('nvidia-device-plugin-daemonset', 'devicePlugin', 'nvcr.io/nvidia/k8s-device-plugin', 'v0.16.2'),
    Operand('gpu-feature-discovery', 'gfd', 'nvcr.io/nvidia/k8s-device-plugin', 'v0.16.2'),
    Operand('nvidia-dcgm-exporter', 'dcgmExporter', 'nvcr.io/nvidia/k8s/dcgm-exporter', '3.3.7-3.5.0-ubuntu22.04'),
    Operand('nvidia-operator-validator', 'validator', 'nvcr.io/nvidia/cloud-native/gpu-operator-validator', 'v24.6.2'),
    Operand('nvidia-mig-manager', 'migManager', 'nvcr.io/nvidia/cloud-native/k8s-mig-manager', 'v0.8.0-ubuntu20.04', mig_only=True),
)


def _section(spec: Mapping, key: str) -> Mapping:
    value = spec.get(key)
    return value if isinstance(value, dict) else {}


def enabled_operands(spec: Mapping, mig_configured: bool) -> List[Operand]:
    """Operands the ClusterPolicy asks for; ``enabled: false`` turns one off, mig-manager needs MIG somewhere."""
    result = []
    for operand in OPERANDS:
        if _section(spec, operand.spec_key).get('enabled') is False:
            continue
        if operand.mig_only and not mig_configured:
            continue
        result.append(operand)
    return result


def _image(spec: Mapping, operand: Operand) -> str:
    section = _section(spec, operand.spec_key)
    repository = section.get('repository')
    image = section.get('image')
    version = section.get('version') or operand.version
    if repository and image:
        return '%s/%s:%s' % (repository, image, version)
    return '%s:%s' % (operand.image, version)


def owner_reference(policy: Mapping) -> dict:
    """Controller owner reference pointing at the ClusterPolicy."""
    meta = policy.get('metadata', {})
    return {'apiVersion': GROUP_VERSION, 'kind': 'ClusterPolicy', 'name': meta.get('name'), 'uid': meta.get('uid'),
            'controller': True, 'blockOwnerDeletion': True}


def render_daemonset(operand: Operand, namespace: str, policy: Mapping) -> dict:
    """The DaemonSet the operator would create for ``operand``."""
    labels = {'app': operand.name, 'app.kubernetes.io/managed-by': MANAGED_BY, 'app.kubernetes.io/part-of': 'gpu-operator'}
    image = _image(policy.get('spec') or {}, operand)
    pod_spec = {
        'nodeSelector': dict(NODE_SELECTOR),
        'tolerations': [{'key': GPU_TAINT, 'operator': 'Exists', 'effect': 'NoSchedule'}],
        'priorityClassName': 'system-node-critical',
        'initContainers': [{'name': 'driver-validation', 'image': _image({}, OPERANDS[5]), 'command': ['sh', '-c', 'true']}],
        'containers': [{'name': operand.name, 'image': image,
                        'resources': {'requests': {'cpu': '10m', 'memory': '16Mi'}}}],
    }
    body = {
        'apiVersion': 'apps/v1',
        'kind': 'DaemonSet',
        'metadata': {'name': operand.name, 'namespace': namespace, 'labels': labels,
                     'ownerReferences': [owner_reference(policy)]},
        'spec': {'selector': {'matchLabels': {'app': operand.name}},
                 'updateStrategy': {'type': 'RollingUpdate'},
                 'template': {'metadata': {'labels': labels}, 'spec': pod_spec}},
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    body['metadata']['annotations'] = {HASH_ANNOTATION: digest}
    return body


def daemonset_ready(daemonset: Mapping) -> bool:
    """True when the DaemonSet controller observed the latest spec and every scheduled pod is ready."""
    meta = daemonset.get('metadata', {})
    status = daemonset.get('status') or {}
    if status.get('observedGeneration', 0) < meta.get('generation', 1):
        return False
    desired = status.get('desiredNumberScheduled', 0)
    return status.get('numberReady', 0) >= desired and not status.get('numberUnavailable')


def parse_sharing(text: str) -> Sharing:
    """Parse a device-plugin config document and return how it shares ``nvidia.com/gpu``; ValueError when malformed."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError('device-plugin config is not YAML: %s' % exc) from exc
    if not isinstance(document, dict):
        raise ValueError('device-plugin config must be a mapping')
    sharing = document.get('sharing') or {}
    if not isinstance(sharing, dict):
        raise ValueError('sharing must be a mapping')
    for key, strategy in (('timeSlicing', 'time-slicing'), ('mps', 'mps')):
        section = sharing.get(key)
        if not isinstance(section, dict):
            continue
        for resource in section.get('resources') or []:
            if not isinstance(resource, dict) or resource.get('name') != 'nvidia.com/gpu':
                continue
            replicas = resource.get('replicas')
            if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
                raise ValueError('%s replicas must be a positive integer, got %r' % (key, replicas))
            rename = bool(resource.get('rename')) or bool(section.get('renameByDefault'))
            return Sharing(strategy, replicas, rename)
    return NO_SHARING


def device_plugin_config(spec: Mapping) -> Tuple[Optional[str], Optional[str]]:
    """(ConfigMap name, default key) from ``spec.devicePlugin.config``."""
    config = _section(_section(spec, 'devicePlugin'), 'config')
    return config.get('name') or None, config.get('default') or None


def sharing_configs(configmap: Optional[Mapping]) -> Dict[str, Sharing]:
    """Parse every key of the device-plugin ConfigMap; malformed entries are left out."""
    result = {}
    for key, text in ((configmap or {}).get('data') or {}).items():
        try:
            result[key] = parse_sharing(text)
        except ValueError:
            continue
    return result


def select_sharing(configs: Mapping[str, Sharing], default_key: Optional[str], node_label: Optional[str]) -> Sharing:
    """Sharing for one node: its ``nvidia.com/device-plugin.config`` label wins over the default; a lone key is the default."""
    key = node_label or default_key
    if key is None and len(configs) == 1:
        key = next(iter(configs))
    return configs.get(key, NO_SHARING) if key else NO_SHARING


def forced_not_ready(policy: Mapping, configured_state: str) -> bool:
    """True when the configuration or the ClusterPolicy annotation forces the notReady state."""
    annotations = policy.get('metadata', {}).get('annotations') or {}
    return configured_state == 'notReady' or annotations.get(STATE_ANNOTATION) == 'notReady'


def policy_age(policy: Mapping, now: datetime) -> float:
    """Seconds since the ClusterPolicy was created."""
    created = parse_time(policy.get('metadata', {}).get('creationTimestamp'))
    return (now - created).total_seconds() if created else 0.0


def operator_state(policy: Mapping, daemonsets: Mapping[str, Mapping], wanted: List[str], now: datetime,
                   delay: float, configured_state: str) -> Tuple[str, str]:
    """Return (state, message): ``ready`` once the delay passed and every wanted operand DaemonSet is ready."""
    if forced_not_ready(policy, configured_state):
        return 'notReady', 'state forced to notReady'
    if policy_age(policy, now) < delay:
        return 'notReady', 'operands are being deployed'
    pending = [name for name in wanted if name not in daemonsets or not daemonset_ready(daemonsets[name])]
    if pending:
        return 'notReady', 'waiting for operand(s): %s' % ', '.join(sorted(pending))
    return 'ready', 'all operands are ready'


def status_body(state: str, message: str, namespace: str, previous: Optional[Mapping], now: datetime) -> dict:
    """ClusterPolicy status for ``state``; the Ready condition keeps its transition time while unchanged."""
    ready = 'True' if state == 'ready' else 'False'
    old = {c.get('type'): c for c in (previous or {}).get('conditions') or []}
    transition = old.get('Ready', {}).get('lastTransitionTime') if old.get('Ready', {}).get('status') == ready else None
    reason = 'Reconciled' if ready == 'True' else 'OperandNotReady'
    error = 'False' if ready == 'True' else 'True'
    return {
        'state': state,
        'namespace': namespace,
        'conditions': [
            {'type': 'Ready', 'status': ready, 'reason': reason, 'message': message, 'lastTransitionTime': transition or rfc3339(now)},
            {'type': 'Error', 'status': error, 'reason': reason, 'message': message,
             'lastTransitionTime': transition or rfc3339(now)},
        ],
    }


def status_changed(previous: Optional[Mapping], wanted: Mapping) -> bool:
    """True when state, namespace or the Ready condition differ."""
    previous = previous or {}

    def ready_of(status):
        return [(c.get('status'), c.get('message')) for c in status.get('conditions') or [] if c.get('type') == 'Ready']
    return (previous.get('state'), previous.get('namespace'), ready_of(previous)) != (wanted['state'], wanted['namespace'], ready_of(wanted))
