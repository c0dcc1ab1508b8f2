"""Pool configuration: loading, defaults and validation of the agent's YAML file."""

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import yaml

FAULTS = (
    'gpu-allocatable-zero',
    'gpu-allocatable-partial',
    'mig-invalid',
    'mig-config-failed',
    'mig-config-stuck',
    'not-ready',
    'smoke-fail',
    'operand-not-ready',
    'no-gfd-labels',
)
TAINT_EFFECTS = ('NoSchedule', 'PreferNoSchedule', 'NoExecute')
MIG_STRATEGIES = ('single', 'mixed')
OPERATOR_STATES = ('ready', 'notReady')
BINDING_MODES = ('WaitForFirstConsumer', 'Immediate')
RECLAIM_POLICIES = ('Delete', 'Retain')
MIG_PROFILE_RE = re.compile(r'^(?:(\d+)c\.)?(\d+)g\.(\d+)gb(?:\+me)?$')
NAME_RE = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')
SUBDOMAIN_RE = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
QUANTITY_RE = re.compile(r'^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$')

POOL_KEYS = {
    'name', 'count', 'labels', 'taints', 'gpus_per_node', 'gpu_product', 'gpu_memory_mib', 'driver_major', 'driver_minor',
    'driver_rev', 'cuda_major', 'cuda_minor', 'mig', 'cpu', 'memory', 'pods', 'ephemeral_storage', 'faults',
    'advertise_before_operator',
}
TOP_KEYS = {'pools', 'operator', 'pods', 'node_faults', 'storage'}
OPERATOR_KEYS = {'namespace', 'ready_delay_seconds', 'state'}
PODS_KEYS = {'job_duration_seconds', 'startup_seconds'}
STORAGE_KEYS = {'class_name', 'default', 'binding_mode', 'reclaim_policy'}


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the offending field."""


@dataclass(frozen=True)
class Taint:
    """A node taint."""

    key: str
    value: str
    effect: str

    def as_dict(self) -> dict:
        """Return the API form of the taint."""
        body = {'key': self.key, 'effect': self.effect}
        if self.value:
            body['value'] = self.value
        return body


@dataclass(frozen=True)
class MigConfig:
    """MIG layout of every GPU node of a pool: the strategy and instances per node by profile."""

    strategy: str
    profiles: Tuple[Tuple[str, int], ...]


@dataclass(frozen=True)
class PoolConfig:  # pylint: disable=too-many-instance-attributes
    """One pool of identical simulated nodes."""

    name: str
    count: int
    labels: Tuple[Tuple[str, str], ...] = ()
    taints: Tuple[Taint, ...] = ()
    gpus_per_node: int = 0
    gpu_product: str = ''
    gpu_memory_mib: int = 0
    driver_major: int = 550
    driver_minor: int = 90
    driver_rev: int = 7
    cuda_major: int = 12
    cuda_minor: int = 4
    mig: Optional[MigConfig] = None
    cpu: str = '8'
    memory: str = '32Gi'
    pods: int = 110
    ephemeral_storage: str = '200Gi'
    faults: Tuple[str, ...] = ()
    advertise_before_operator: bool = True

    @property
    def is_gpu(self) -> bool:
        """True for pools whose nodes carry GPUs."""
        return self.gpus_per_node > 0

    def node_names(self) -> List[str]:
        """Names of the pool's nodes, ``<pool>-<index>``."""
        return ['%s-%d' % (self.name, index) for index in range(self.count)]


@dataclass(frozen=True)
class OperatorConfig:
    """How the played GPU operator behaves."""

    namespace: str = 'gpu-operator'
    ready_delay_seconds: float = 2.0
    state: str = 'ready'


@dataclass(frozen=True)
class PodTiming:
    """How long simulated containers take to start and, for Job pods, to finish."""

    startup_seconds: float = 0.5
    job_duration_seconds: float = 2.0


@dataclass(frozen=True)
class StorageConfig:
    """The StorageClass the agent keeps in the cluster and provisions hostPath volumes for."""

    class_name: str = 'standard'
    default: bool = True
    binding_mode: str = 'WaitForFirstConsumer'
    reclaim_policy: str = 'Delete'


@dataclass(frozen=True)
class AgentConfig:
    """The whole validated configuration."""

    pools: Tuple[PoolConfig, ...]
    operator: OperatorConfig = OperatorConfig()
    pods: PodTiming = PodTiming()
    node_faults: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    storage: StorageConfig = StorageConfig()

    def nodes(self) -> Dict[str, Tuple[PoolConfig, int]]:
        """Map every node name to its pool and index, in configuration order."""
        return {name: (pool, index) for pool in self.pools for index, name in enumerate(pool.node_names())}

    def faults_for(self, node_name: str, pool: PoolConfig) -> Tuple[str, ...]:
        """Faults configured for a node: its pool's plus its own."""
        return tuple(sorted(set(pool.faults) | set(self.node_faults.get(node_name, ()))))


def _fail(where: str, message: str):
    raise ConfigError('%s: %s' % (where, message))


def _check_keys(where: str, data: dict, allowed: set):
    if not isinstance(data, dict):
        _fail(where, 'must be a mapping, got %s' % type(data).__name__)
    unknown = sorted(set(data) - allowed)
    if unknown:
        _fail(where, 'unknown key(s) %s; allowed: %s' % (', '.join(map(str, unknown)), ', '.join(sorted(allowed))))


def _int(where: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(where, 'must be an integer, got %r' % (value,))
    if value < minimum:
        _fail(where, 'must be >= %d, got %d' % (minimum, value))
    return value


def _number(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        _fail(where, 'must be a non-negative number, got %r' % (value,))
    return float(value)


def _quantity(where: str, value) -> str:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    if text is None or not QUANTITY_RE.match(text):
        _fail(where, 'must be a Kubernetes quantity such as 8, 500m or 64Gi, got %r' % (value,))
    return text


def _str(where: str, value) -> str:
    if not isinstance(value, str) or not value:
        _fail(where, 'must be a non-empty string, got %r' % (value,))
    return value


def _faults(where: str, value) -> Tuple[str, ...]:
    if not isinstance(value, list):
        _fail(where, 'must be a list of fault names')
    for item in value:
        if item not in FAULTS:
            _fail(where, 'unknown fault %r; known: %s' % (item, ', '.join(FAULTS)))
    return tuple(value)


def _labels(where: str, value) -> Tuple[Tuple[str, str], ...]:
    if not isinstance(value, dict):
        _fail(where, 'must be a mapping of label names to values')
    result = []
    for key, val in value.items():
        if not isinstance(key, str) or isinstance(val, (dict, list)) or val is None:
            _fail(where, 'label %r must map a string to a scalar' % (key,))
        result.append((key, str(val).lower() if isinstance(val, bool) else str(val)))
    return tuple(result)


def parse_taint(where: str, value) -> Taint:
    """Parse a taint given as ``key=value:Effect`` or as a mapping with key/value/effect."""
    if isinstance(value, str):
        match = re.match(r'^([^=:]+)(?:=([^:]*))?:(\w+)$', value)
        if not match:
            _fail(where, 'taint %r must look like key=value:Effect' % value)
        key, val, effect = match.group(1), match.group(2) or '', match.group(3)
    elif isinstance(value, dict):
        _check_keys(where, value, {'key', 'value', 'effect'})
        key, val, effect = _str(where + '.key', value.get('key')), str(value.get('value', '')), value.get('effect')
    else:
        _fail(where, 'taint must be a string or a mapping')
    if effect not in TAINT_EFFECTS:
        _fail(where, 'taint effect %r must be one of %s' % (effect, ', '.join(TAINT_EFFECTS)))
    return Taint(key, val, effect)


def mig_profile_slices(profile: str) -> Tuple[int, int, int]:
    """Return (compute slices, GPU-instance slices, memory GB) of a MIG profile name such as ``1g.10gb``."""
    match = MIG_PROFILE_RE.match(profile)
    if not match:
        raise ConfigError('MIG profile %r must look like 1g.10gb' % profile)
    gi = int(match.group(2))
    ci = int(match.group(1)) if match.group(1) else gi
    return ci, gi, int(match.group(3))


def _mig(where: str, value) -> MigConfig:
    _check_keys(where, value, {'strategy', 'profiles'})
    strategy = value.get('strategy', 'single')
    if strategy not in MIG_STRATEGIES:
        _fail(where + '.strategy', 'must be one of %s, got %r' % (', '.join(MIG_STRATEGIES), strategy))
    profiles = value.get('profiles')
    if not isinstance(profiles, dict) or not profiles:
        _fail(where + '.profiles', 'must be a non-empty mapping of MIG profile to instances per node')
    for profile, count in profiles.items():
        try:
            mig_profile_slices(str(profile))
        except ConfigError as exc:
            _fail(where + '.profiles', str(exc))
        _int('%s.profiles[%s]' % (where, profile), count, 1)
    if strategy == 'single' and len(profiles) != 1:
        _fail(where, 'the single strategy needs exactly one profile, got %d' % len(profiles))
    return MigConfig(strategy, tuple((str(k), v) for k, v in profiles.items()))


def _pool(where: str, data: dict) -> PoolConfig:
    _check_keys(where, data, POOL_KEYS)
    name = _str(where + '.name', data.get('name'))
    if not NAME_RE.match(name) or len(name) > 50:
        _fail(where + '.name', 'must be a lowercase DNS label of at most 50 characters, got %r' % name)
    values = {'name': name, 'count': _int(where + '.count', data.get('count'))}
    for key in ('gpus_per_node', 'gpu_memory_mib', 'driver_major', 'driver_minor', 'driver_rev', 'cuda_major', 'cuda_minor'):
        if key in data:
            values[key] = _int('%s.%s' % (where, key), data[key])
    if 'pods' in data:
        values['pods'] = _int(where + '.pods', data['pods'], 1)
    for key in ('cpu', 'memory', 'ephemeral_storage'):
        if key in data:
            values[key] = _quantity('%s.%s' % (where, key), data[key])
    if 'labels' in data:
        values['labels'] = _labels(where + '.labels', data['labels'])
    if 'taints' in data:
        if not isinstance(data['taints'], list):
            _fail(where + '.taints', 'must be a list')
        values['taints'] = tuple(parse_taint('%s.taints[%d]' % (where, i), t) for i, t in enumerate(data['taints']))
    if 'faults' in data:
        values['faults'] = _faults(where + '.faults', data['faults'])
    if 'advertise_before_operator' in data:
        if not isinstance(data['advertise_before_operator'], bool):
            _fail(where + '.advertise_before_operator', 'must be a boolean')
        values['advertise_before_operator'] = data['advertise_before_operator']
    if values.get('gpus_per_node', 0) > 0:
        values['gpu_product'] = _str(where + '.gpu_product', data.get('gpu_product'))
        if not values.get('gpu_memory_mib'):
            _fail(where + '.gpu_memory_mib', 'is required (> 0) for a GPU pool')
    elif 'mig' in data or 'gpu_product' in data:
        _fail(where, 'gpu_product and mig need gpus_per_node > 0')
    if 'mig' in data:
        values['mig'] = _mig(where + '.mig', data['mig'])
    return PoolConfig(**values)


def _operator(data) -> OperatorConfig:
    _check_keys('operator', data, OPERATOR_KEYS)
    values = {}
    if 'namespace' in data:
        values['namespace'] = _str('operator.namespace', data['namespace'])
    if 'ready_delay_seconds' in data:
        values['ready_delay_seconds'] = _number('operator.ready_delay_seconds', data['ready_delay_seconds'])
    if 'state' in data:
        if data['state'] not in OPERATOR_STATES:
            _fail('operator.state', 'must be one of %s, got %r' % (', '.join(OPERATOR_STATES), data['state']))
        values['state'] = data['state']
    return OperatorConfig(**values)


def _pods(data) -> PodTiming:
    _check_keys('pods', data, PODS_KEYS)
    return PodTiming(**{key: _number('pods.' + key, value) for key, value in data.items()})


def _storage(data) -> StorageConfig:
    _check_keys('storage', data, STORAGE_KEYS)
    values = {}
    if 'class_name' in data:
        name = _str('storage.class_name', data['class_name'])
        if not SUBDOMAIN_RE.match(name) or len(name) > 253:
            _fail('storage.class_name', 'must be a lowercase DNS subdomain of at most 253 characters, got %r' % name)
        values['class_name'] = name
    if 'default' in data:
        if not isinstance(data['default'], bool):
            _fail('storage.default', 'must be a boolean, got %r' % (data['default'],))
        values['default'] = data['default']
    for key, allowed in (('binding_mode', BINDING_MODES), ('reclaim_policy', RECLAIM_POLICIES)):
        if key in data:
            if data[key] not in allowed:
                _fail('storage.' + key, 'must be one of %s, got %r' % (', '.join(allowed), data[key]))
            values[key] = data[key]
    return StorageConfig(**values)


def parse_config(data) -> AgentConfig:
    """Validate a parsed YAML document and return the configuration, raising ConfigError with a precise message."""
    _check_keys('config', data, TOP_KEYS)
    pools = data.get('pools')
    if not isinstance(pools, list) or not pools:
        _fail('pools', 'must be a non-empty list')
    parsed = tuple(_pool('pools[%d]' % i, pool) for i, pool in enumerate(pools))
    names = [pool.name for pool in parsed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        _fail('pools', 'duplicate pool name(s): %s' % ', '.join(duplicates))
    # Pool names are unique and node names end in -<index>, so node names are unique too.
    node_names = [node for pool in parsed for node in pool.node_names()]
    node_faults = {}
    raw_faults = data.get('node_faults') or {}
    if not isinstance(raw_faults, dict):
        _fail('node_faults', 'must map node names to lists of faults')
    known = set(node_names)
    for node, faults in raw_faults.items():
        if node not in known:
            _fail('node_faults', 'node %r is not produced by any pool' % (node,))
        node_faults[node] = _faults('node_faults.%s' % node, faults)
    return AgentConfig(
        pools=parsed,
        operator=_operator(data.get('operator') or {}),
        pods=_pods(data.get('pods') or {}),
        node_faults=node_faults,
        storage=_storage(data.get('storage') or {}),
    )


def load_config(path: str) -> AgentConfig:
    """Read and validate a configuration file."""
    try:
        with open(path, encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError('%s: cannot read configuration: %s' % (path, exc)) from exc
    try:
        return parse_config(data if data is not None else {})
    except ConfigError as exc:
        raise ConfigError('%s: %s' % (path, exc)) from exc
