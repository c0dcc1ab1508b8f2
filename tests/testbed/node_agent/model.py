"""Pure rendering of simulated Nodes: resources, GFD labels, taints, conditions and the patches that reconcile them."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

from kubernetes.utils.quantity import parse_quantity

from .config import PoolConfig, mig_profile_slices

MANAGED_LABEL = 'testbed.mlops.platform/managed'
POOL_LABEL = 'testbed.mlops.platform/pool'
FAULTS_ANNOTATION = 'testbed.mlops.platform/faults'
DEVICE_PLUGIN_CONFIG_LABEL = 'nvidia.com/device-plugin.config'
MIG_CONFIG_LABEL = 'nvidia.com/mig.config'
MIG_CONFIG_STATE_LABEL = 'nvidia.com/mig.config.state'
GPU_RESOURCE = 'nvidia.com/gpu'
SHARED_RESOURCE = 'nvidia.com/gpu.shared'
NOT_READY_TAINT = 'node.kubernetes.io/not-ready'
KUBELET_VERSION = 'v1.20.2'
# Labels that users or other controllers own even though they sit under nvidia.com/.
USER_OWNED_LABELS = frozenset({DEVICE_PLUGIN_CONFIG_LABEL, MIG_CONFIG_LABEL})
USER_OWNED_PREFIXES = ('nvidia.com/gpu.deploy.',)
GFD_PREFIXES = ('nvidia.com/', 'feature.node.kubernetes.io/pci-10de')

# (product substring, family, compute major, compute minor); first match wins.
GPU_FAMILIES = (
    ('B200', 'blackwell', 10, 0), ('GB200', 'blackwell', 10, 0),
    ('H100', 'hopper', 9, 0), ('H200', 'hopper', 9, 0), ('H20', 'hopper', 9, 0),
    ('L40', 'ada-lovelace', 8, 9), ('L4', 'ada-lovelace', 8, 9),
    ('A100', 'ampere', 8, 0), ('A30', 'ampere', 8, 0), ('A10', 'ampere', 8, 6),
    ('T4', 'turing', 7, 5), ('V100', 'volta', 7, 0),
)


@dataclass(frozen=True)
class Sharing:
    """How the device plugin shares each GPU: strategy (none|time-slicing|mps), replicas and whether it renames."""

    strategy: str = 'none'
    replicas: int = 1
    rename: bool = False


NO_SHARING = Sharing()


@dataclass(frozen=True)
class OperatorView:
    """What the played GPU operator currently provides to a node."""

    present: bool = False
    gfd_active: bool = False
    ready: bool = False
    sharing: Sharing = NO_SHARING


NO_OPERATOR = OperatorView()


@dataclass(frozen=True)
class NodeSpec:
    """A configured node: its name, pool and index."""

    name: str
    pool: PoolConfig
    index: int


@dataclass
class DesiredNode:
    """The state the agent wants a node to have."""

    labels: Dict[str, str]
    managed_label_keys: FrozenSet[str]
    taints: List[dict]
    managed_taint_keys: FrozenSet[str]
    capacity: Dict[str, str]
    allocatable: Dict[str, str]
    ready: bool
    owns_gfd_labels: bool = False


def now_utc() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """Format a time the way the API server does for metav1.Time."""
    return moment.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def micro_time(moment: datetime) -> str:
    """Format a time as metav1.MicroTime."""
    return moment.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def parse_time(text: Optional[str]) -> Optional[datetime]:
    """Parse an API timestamp (with or without fractional seconds); None stays None."""
    if not text:
        return None
    text = text.rstrip('Z')
    fmt = '%Y-%m-%dT%H:%M:%S.%f' if '.' in text else '%Y-%m-%dT%H:%M:%S'
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)


def parse_faults(annotation: Optional[str], known: Iterable[str]) -> Tuple[FrozenSet[str], List[str]]:
    """Split the faults annotation into (known faults, unknown names)."""
    names = [item.strip() for item in (annotation or '').split(',') if item.strip()]
    known = set(known)
    return frozenset(n for n in names if n in known), [n for n in names if n not in known]


def gpu_family(product: str) -> Tuple[str, int, int]:
    """Return (family, compute major, compute minor) for a GPU product name."""
    for needle, family, major, minor in GPU_FAMILIES:
        if needle in product:
            return family, major, minor
    return 'unknown', 0, 0


def mig_memory_mib(profile: str) -> int:
    """Approximate memory of a MIG device in MiB, from the profile's GB figure."""
    return mig_profile_slices(profile)[2] * 1024


def gpu_devices(pool: PoolConfig) -> Dict[str, int]:
    """Device-plugin resources of one node before sharing and faults."""
    if not pool.is_gpu:
        return {}
    if pool.mig is None:
        return {GPU_RESOURCE: pool.gpus_per_node}
    if pool.mig.strategy == 'single':
        return {GPU_RESOURCE: pool.mig.profiles[0][1]}
    return {'nvidia.com/mig-%s' % profile: count for profile, count in pool.mig.profiles}


def gpu_resources(pool: PoolConfig, view: OperatorView, faults: FrozenSet[str]) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Return (capacity, allocatable) counts of the node's GPU resources, after sharing and faults."""
    if not pool.is_gpu or not (pool.advertise_before_operator or view.ready):
        return {}, {}
    capacity = dict(gpu_devices(pool))
    if GPU_RESOURCE in capacity and view.sharing.strategy != 'none':
        count = capacity.pop(GPU_RESOURCE) * view.sharing.replicas
        capacity[SHARED_RESOURCE if view.sharing.rename else GPU_RESOURCE] = count
    allocatable = dict(capacity)
    if 'gpu-allocatable-zero' in faults:
        allocatable = {key: 0 for key in capacity}
    elif 'gpu-allocatable-partial' in faults:
        allocatable = {key: max(0, value - 1) for key, value in capacity.items()}
    return capacity, allocatable


def _mig_labels(pool: PoolConfig) -> Dict[str, str]:
    labels = {'nvidia.com/mig.strategy': pool.mig.strategy, 'nvidia.com/mig.config.state': 'success'}
    for profile, count in pool.mig.profiles:
        ci, gi = mig_profile_slices(profile)[:2]
        prefix = 'nvidia.com/mig-%s.' % profile if pool.mig.strategy == 'mixed' else 'nvidia.com/gpu.'
        labels.update({prefix + 'count': str(count), prefix + 'memory': str(mig_memory_mib(profile)),
                       prefix + 'slices.gi': str(gi), prefix + 'slices.ci': str(ci)})
    if pool.mig.strategy == 'single':
        labels['nvidia.com/gpu.product'] = '%s-MIG-%s' % (pool.gpu_product, pool.mig.profiles[0][0])
    return labels


def gfd_labels(pool: PoolConfig, sharing: Sharing, faults: FrozenSet[str]) -> Dict[str, str]:
    """Labels GPU feature discovery puts on a node of this pool."""
    family, compute_major, compute_minor = gpu_family(pool.gpu_product)
    shared = sharing.strategy != 'none' and not sharing.rename
    labels = {
        'nvidia.com/gpu.present': 'true',
        'nvidia.com/gpu.product': pool.gpu_product + ('-SHARED' if shared else ''),
        'nvidia.com/gpu.count': str(pool.gpus_per_node),
        'nvidia.com/gpu.memory': str(pool.gpu_memory_mib),
        'nvidia.com/gpu.family': family,
        'nvidia.com/gpu.compute.major': str(compute_major),
        'nvidia.com/gpu.compute.minor': str(compute_minor),
        'nvidia.com/gpu.machine': 'Standard-Testbed',
        'nvidia.com/gpu.replicas': str(sharing.replicas),
        'nvidia.com/gpu.sharing-strategy': sharing.strategy,
        'nvidia.com/cuda.driver.major': str(pool.driver_major),
        'nvidia.com/cuda.driver.minor': str(pool.driver_minor),
        'nvidia.com/cuda.driver.rev': '%02d' % pool.driver_rev,
        'nvidia.com/cuda.driver-version.full': '%d.%d.%02d' % (pool.driver_major, pool.driver_minor, pool.driver_rev),
        'nvidia.com/cuda.runtime.major': str(pool.cuda_major),
        'nvidia.com/cuda.runtime.minor': str(pool.cuda_minor),
        'nvidia.com/cuda.runtime-version.full': '%d.%d' % (pool.cuda_major, pool.cuda_minor),
        'nvidia.com/mig.capable': 'true' if pool.mig is not None or family in ('ampere', 'hopper', 'blackwell') else 'false',
        'nvidia.com/mps.capable': 'true' if sharing.strategy == 'mps' else 'false',
    }
    if pool.mig is not None:
        labels.update(_mig_labels(pool))
    else:
        labels['nvidia.com/mig.strategy'] = 'single'
    if 'mig-invalid' in faults:
        labels.update({'nvidia.com/gpu.product': pool.gpu_product + '-MIG-INVALID', 'nvidia.com/gpu.count': '0',
                       'nvidia.com/gpu.memory': '0', 'nvidia.com/gpu.replicas': '0', 'nvidia.com/mig.strategy': 'single',
                       'nvidia.com/mig.config.state': 'failed'})
    return labels


def base_labels(spec: NodeSpec) -> Dict[str, str]:
    """Kubelet-style labels plus the pool's own labels."""
    labels = {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': 'amd64',
        'node.kubernetes.io/instance-type': 'testbed-%s' % spec.pool.name,
        MANAGED_LABEL: 'true',
        POOL_LABEL: spec.pool.name,
    }
    labels.update(dict(spec.pool.labels))
    return labels


def mig_config_state(faults: FrozenSet[str]) -> str:
    """The state mig-manager reports once it handled a requested MIG configuration (``nvidia.com/mig.config``)."""
    if 'mig-config-failed' in faults or 'mig-invalid' in faults:
        return 'failed'
    if 'mig-config-stuck' in faults:
        return 'pending'
    return 'success'


def node_labels(spec: NodeSpec, view: OperatorView, faults: FrozenSet[str], mig_config: Optional[str] = None) -> Dict[str, str]:
    """Every label the agent wants on the node; ``mig_config`` is the node's requested MIG configuration label."""
    labels = base_labels(spec)
    if spec.pool.is_gpu and view.present:
        # NFD's PCI label and the operator's gpu.present select the node for the operands; GFD adds the rest.
        labels.update({'feature.node.kubernetes.io/pci-10de.present': 'true', 'nvidia.com/gpu.present': 'true'})
        if view.gfd_active and 'no-gfd-labels' not in faults:
            labels.update(gfd_labels(spec.pool, view.sharing, faults))
        if mig_config:
            # mig-manager answers a requested configuration, whoever set it to pending.
            labels[MIG_CONFIG_STATE_LABEL] = mig_config_state(faults)
    return labels


def node_taints(spec: NodeSpec, faults: FrozenSet[str]) -> List[dict]:
    """Taints the agent manages on the node (configured ones, plus not-ready under that fault)."""
    taints = [taint.as_dict() for taint in spec.pool.taints]
    if 'not-ready' in faults:
        taints.append({'key': NOT_READY_TAINT, 'effect': 'NoSchedule'})
    return taints


def desired_node(spec: NodeSpec, view: OperatorView, faults: FrozenSet[str], mig_config: Optional[str] = None) -> DesiredNode:
    """Compute the full desired state of a node (``mig_config``: its ``nvidia.com/mig.config`` label)."""
    pool = spec.pool
    gpu_capacity, gpu_allocatable = gpu_resources(pool, view, faults)
    base = {'cpu': pool.cpu, 'memory': pool.memory, 'pods': str(pool.pods), 'ephemeral-storage': pool.ephemeral_storage}
    capacity = dict(base, **{key: str(value) for key, value in gpu_capacity.items()})
    allocatable = dict(base, **{key: str(value) for key, value in gpu_allocatable.items()})
    return DesiredNode(
        labels=node_labels(spec, view, faults, mig_config),
        managed_label_keys=frozenset(base_labels(spec)),
        taints=node_taints(spec, faults),
        managed_taint_keys=frozenset([t.key for t in pool.taints] + [NOT_READY_TAINT]),
        capacity=capacity,
        allocatable=allocatable,
        ready='not-ready' not in faults,
        owns_gfd_labels=pool.is_gpu,
    )


def node_conditions(ready: bool, now: datetime, previous: Optional[List[dict]] = None) -> List[dict]:
    """Kubelet-style conditions; transition times are kept from ``previous`` when the status did not change."""
    before = {c.get('type'): c for c in previous or []}
    wanted = [
        ('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        ('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        ('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        ('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status')
        if ready else ('Ready', 'False', 'KubeletNotReady', 'container runtime network not ready: simulated fault'),
    ]
    conditions = []
    for kind, status, reason, message in wanted:
        old = before.get(kind, {})
        transition = old.get('lastTransitionTime') if old.get('status') == status else None
        conditions.append({'type': kind, 'status': status, 'reason': reason, 'message': message,
                           'lastHeartbeatTime': rfc3339(now), 'lastTransitionTime': transition or rfc3339(now)})
    return conditions


def _stable_id(name: str, salt: str) -> str:
    return hashlib.sha256((salt + name).encode()).hexdigest()[:32]


def node_object(spec: NodeSpec, desired: DesiredNode, kubelet_port: int, now: datetime) -> dict:
    """The complete Node object to register, status included (the API accepts status on create)."""
    node_id = _stable_id(spec.name, 'machine')
    return {
        'apiVersion': 'v1',
        'kind': 'Node',
        'metadata': {'name': spec.name, 'labels': desired.labels,
                     'annotations': {'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true'}},
        'spec': {'taints': desired.taints} if desired.taints else {},
        'status': {
            'capacity': desired.capacity,
            'allocatable': desired.allocatable,
            'conditions': node_conditions(desired.ready, now),
            'addresses': [{'type': 'InternalIP', 'address': '127.0.0.1'}, {'type': 'Hostname', 'address': spec.name}],
            'daemonEndpoints': {'kubeletEndpoint': {'Port': kubelet_port}},
            'nodeInfo': {
                'machineID': node_id, 'systemUUID': _stable_id(spec.name, 'uuid'), 'bootID': _stable_id(spec.name, 'boot'),
                'kernelVersion': '5.15.0-1064-azure', 'osImage': 'Ubuntu 22.04.4 LTS', 'containerRuntimeVersion': 'containerd://1.7.15',
                'kubeletVersion': KUBELET_VERSION, 'kubeProxyVersion': KUBELET_VERSION, 'operatingSystem': 'linux', 'architecture': 'amd64',
            },
        },
    }


def _quantities_equal(left: Optional[str], right: Optional[str]) -> bool:
    if left is None or right is None:
        return left is right
    try:
        return parse_quantity(left) == parse_quantity(right)
    except ValueError:
        return left == right


def _resource_patch(desired: Dict[str, str], observed: Dict[str, str]) -> Optional[Dict[str, Optional[str]]]:
    """Merge-patch for a resource list, or None when it already matches; extended nvidia.com/* keys are removed when unwanted."""
    stale = {key: None for key in observed if key.startswith('nvidia.com/') and key not in desired}
    differs = any(not _quantities_equal(value, observed.get(key)) for key, value in desired.items())
    return dict(desired, **stale) if differs or stale else None


def _label_patch(desired: DesiredNode, observed: Dict[str, str]) -> Dict[str, Optional[str]]:
    patch = {key: value for key, value in desired.labels.items() if observed.get(key) != value}
    for key in observed:
        if key in desired.labels or key in USER_OWNED_LABELS or key.startswith(USER_OWNED_PREFIXES):
            continue
        if key in desired.managed_label_keys or (desired.owns_gfd_labels and key.startswith(GFD_PREFIXES)):
            patch[key] = None
    return patch


def _taint_list(desired: DesiredNode, observed: List[dict]) -> Optional[List[dict]]:
    kept = [t for t in observed if t.get('key') not in desired.managed_taint_keys]
    wanted = kept + desired.taints

    def canon(taints):
        return sorted((t.get('key'), t.get('value', ''), t.get('effect')) for t in taints)
    return wanted if canon(wanted) != canon(observed) else None


def heartbeat_due(observed: dict, now: datetime, interval: float) -> bool:
    """True when the node's Ready condition heartbeat is older than ``interval`` seconds."""
    for condition in observed.get('status', {}).get('conditions') or []:
        if condition.get('type') == 'Ready':
            beat = parse_time(condition.get('lastHeartbeatTime'))
            return beat is None or (now - beat).total_seconds() >= interval
    return True


def observed_ready(observed: dict) -> Optional[bool]:
    """The Ready condition of an observed node as a boolean, or None when it has none."""
    for condition in observed.get('status', {}).get('conditions') or []:
        if condition.get('type') == 'Ready':
            return condition.get('status') == 'True'
    return None


def node_patches(desired: DesiredNode, observed: dict, now: datetime, heartbeat_interval: float) -> Tuple[Optional[dict], Optional[dict]]:
    """Return (metadata/spec merge-patch, status merge-patch) turning ``observed`` into ``desired``; None where nothing differs."""
    meta_patch = {}
    labels = _label_patch(desired, observed.get('metadata', {}).get('labels') or {})
    if labels:
        meta_patch['metadata'] = {'labels': labels}
    taints = _taint_list(desired, observed.get('spec', {}).get('taints') or [])
    if taints is not None:
        meta_patch['spec'] = {'taints': taints}
    status = observed.get('status', {})
    status_patch = {}
    for field_name in ('capacity', 'allocatable'):
        patch = _resource_patch(getattr(desired, field_name), status.get(field_name) or {})
        if patch is not None:
            status_patch[field_name] = patch
    if observed_ready(observed) != desired.ready or heartbeat_due(observed, now, heartbeat_interval):
        status_patch['conditions'] = node_conditions(desired.ready, now, status.get('conditions'))
    return meta_patch or None, {'status': status_patch} if status_patch else None
