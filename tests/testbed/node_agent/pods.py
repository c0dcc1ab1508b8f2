"""Pure pod lifecycle of the simulated kubelet: what status a bound pod should have now, and when to look again."""

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import FrozenSet, List, Mapping, Optional, Tuple

from .config import PodTiming
from .model import parse_time, rfc3339

OPERAND_LABEL = 'app.kubernetes.io/managed-by'
HOST_IP = '127.0.0.1'
POD_NETWORK = ipaddress.ip_network('10.244.0.0/14')


@dataclass(frozen=True)
class PodPlan:
    """Result of planning a pod: the status to write (None = leave alone) and seconds until it should be planned again."""

    status: Optional[dict]
    recheck_after: Optional[float]


def pod_ip(serial: int) -> str:
    """The ``serial``-th fake pod IP (skipping network and broadcast-looking addresses)."""
    return str(POD_NETWORK.network_address + 1 + serial % (POD_NETWORK.num_addresses - 2))


def is_job_pod(pod: Mapping) -> bool:
    """True for pods whose controller is a Job."""
    return any(ref.get('kind') == 'Job' for ref in pod.get('metadata', {}).get('ownerReferences') or [])


def is_operand_pod(pod: Mapping, operator_namespace: str) -> bool:
    """True for GPU operator operand pods."""
    meta = pod.get('metadata', {})
    return meta.get('namespace') == operator_namespace and (meta.get('labels') or {}).get(OPERAND_LABEL) == 'gpu-operator'


def _container_id(pod: Mapping, name: str) -> str:
    uid = pod.get('metadata', {}).get('uid', '')
    return 'containerd://' + hashlib.sha256(('%s/%s' % (uid, name)).encode()).hexdigest()


def _image_id(image: str) -> str:
    repo = image.rsplit(':', 1)[0] if ':' in image.rsplit('/', 1)[-1] else image
    return '%s@sha256:%s' % (repo, hashlib.sha256(image.encode()).hexdigest())


def _base_status(container: Mapping, pod: Mapping, ready: bool, started: bool) -> dict:
    image = container.get('image', '')
    status = {'name': container.get('name'), 'image': image, 'imageID': _image_id(image) if started else '',
              'ready': ready, 'restartCount': 0, 'started': started}
    if started:
        status['containerID'] = _container_id(pod, container.get('name', ''))
    return status


def running_container(container: Mapping, pod: Mapping, started_at: str) -> dict:
    """A running, ready container status."""
    return dict(_base_status(container, pod, True, True), state={'running': {'startedAt': started_at}})


def terminated_container(container: Mapping, pod: Mapping, started_at: str, finished_at: str, exit_code: int) -> dict:
    """A terminated container status (Completed for exit code 0, Error otherwise)."""
    reason = 'Completed' if exit_code == 0 else 'Error'
    state = {'terminated': {'exitCode': exit_code, 'reason': reason, 'startedAt': started_at, 'finishedAt': finished_at,
                            'containerID': _container_id(pod, container.get('name', ''))}}
    return dict(_base_status(container, pod, False, False), state=state, containerID=state['terminated']['containerID'],
                imageID=_image_id(container.get('image', '')))


def waiting_container(container: Mapping, pod: Mapping, reason: str) -> dict:
    """A container waiting with ``reason``."""
    return dict(_base_status(container, pod, False, False), state={'waiting': {'reason': reason}})


def _conditions(now: str, initialized: bool, ready: bool, reason: Optional[str] = None) -> List[dict]:
    def cond(kind, status):
        body = {'type': kind, 'status': 'True' if status else 'False', 'lastProbeTime': None, 'lastTransitionTime': now}
        if not status and reason:
            body['reason'] = reason
        return body
    return [cond('Initialized', initialized), cond('Ready', ready), cond('ContainersReady', ready), cond('PodScheduled', True)]


def _addresses(pod: Mapping, ip: str) -> dict:
    own_ip = HOST_IP if (pod.get('spec') or {}).get('hostNetwork') else ip
    return {'hostIP': HOST_IP, 'podIP': own_ip, 'podIPs': [{'ip': own_ip}]}


def running_status(pod: Mapping, ip: str, started_at: str, now: str) -> dict:
    """Status of a pod whose init containers completed and whose containers run and are ready."""
    spec = pod.get('spec') or {}
    inits = [terminated_container(c, pod, started_at, started_at, 0) for c in spec.get('initContainers') or []]
    return dict(_addresses(pod, ip), phase='Running', startTime=started_at, conditions=_conditions(now, True, True),
                initContainerStatuses=inits, containerStatuses=[running_container(c, pod, started_at) for c in spec.get('containers') or []])


def blocked_status(pod: Mapping, ip: str, started_at: str, now: str) -> dict:
    """Status of a pod stuck initializing (shown as Init:0/N): Pending, init containers waiting."""
    spec = pod.get('spec') or {}
    inits = [waiting_container(c, pod, 'PodInitializing') for c in spec.get('initContainers') or []]
    containers = [waiting_container(c, pod, 'PodInitializing') for c in spec.get('containers') or []]
    return dict(_addresses(pod, ip), phase='Pending', startTime=started_at, conditions=_conditions(now, False, False, 'ContainersNotInitialized'),
                initContainerStatuses=inits, containerStatuses=containers)


def finished_status(pod: Mapping, ip: str, started_at: str, now: str, success: bool) -> dict:
    """Status of a pod whose containers all exited: Succeeded (exit 0) or Failed (exit 1)."""
    spec = pod.get('spec') or {}
    code = 0 if success else 1
    inits = [terminated_container(c, pod, started_at, started_at, 0) for c in spec.get('initContainers') or []]
    containers = [terminated_container(c, pod, started_at, now, code) for c in spec.get('containers') or []]
    reason = 'PodCompleted' if success else 'PodFailed'
    return dict(_addresses(pod, ip), phase='Succeeded' if success else 'Failed', startTime=started_at,
                conditions=_conditions(now, True, False, reason), initContainerStatuses=inits, containerStatuses=containers)


def _is_running_ready(status: Mapping) -> bool:
    ready = [c for c in status.get('conditions') or [] if c.get('type') == 'Ready']
    return status.get('phase') == 'Running' and bool(ready) and ready[0].get('status') == 'True'


def _is_blocked(status: Mapping) -> bool:
    inits = status.get('initContainerStatuses') or []
    return status.get('phase') == 'Pending' and bool(inits) and all('waiting' in (c.get('state') or {}) for c in inits)


def plan_pod(pod: Mapping, faults: FrozenSet[str], operator_namespace: str, timing: PodTiming,
             first_seen: datetime, now: datetime, ip: str) -> PodPlan:
    """Decide the next status of a pod bound to a simulated node.

    Pods start ``startup_seconds`` after the agent first saw them bound. Job pods finish ``job_duration_seconds`` after
    they started: Succeeded, or Failed under the ``smoke-fail`` fault. Operand pods stay initializing under
    ``operand-not-ready``. Everything else runs and is ready.
    """
    status = pod.get('status') or {}
    if status.get('phase') in ('Succeeded', 'Failed') or pod.get('metadata', {}).get('deletionTimestamp'):
        return PodPlan(None, None)
    started = parse_time(status.get('startTime'))
    if started is None:
        wait = timing.startup_seconds - (now - first_seen).total_seconds()
        if wait > 0:
            return PodPlan(None, wait)
        started = now
    ip = status.get('podIP') or ip
    started_at, now_text = rfc3339(started), rfc3339(now)
    if is_operand_pod(pod, operator_namespace) and 'operand-not-ready' in faults:
        return PodPlan(None if _is_blocked(status) else blocked_status(pod, ip, started_at, now_text), None)
    if is_job_pod(pod):
        remaining = timing.job_duration_seconds - (now - started).total_seconds()
        if remaining <= 0:
            return PodPlan(finished_status(pod, ip, started_at, now_text, 'smoke-fail' not in faults), None)
        wanted = None if _is_running_ready(status) else running_status(pod, ip, started_at, now_text)
        return PodPlan(wanted, remaining)
    return PodPlan(None if _is_running_ready(status) else running_status(pod, ip, started_at, now_text), None)


def pod_outcome(pod: Mapping) -> Tuple[str, bool]:
    """(phase, is_job) of a pod, for log rendering."""
    return (pod.get('status') or {}).get('phase', 'Pending'), is_job_pod(pod)
