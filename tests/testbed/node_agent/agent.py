"""The running agent: registers the configured nodes, plays kubelet for their pods and the GPU operator for the cluster."""

import argparse
import itertools
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

from .config import FAULTS, AgentConfig, ConfigError, load_config
from .gpu_operator import (CLUSTERPOLICY_PATH, device_plugin_config, enabled_operands, operator_state, policy_age, render_daemonset,
                           select_sharing, sharing_configs, status_body, status_changed, HASH_ANNOTATION)
from .kserve import KServeController
from .kube import ApiError, Informer, Rest, WorkQueue, object_key, start_workers
from .logs import LogServer, container_log, pod_start
from .model import (DEVICE_PLUGIN_CONFIG_LABEL, FAULTS_ANNOTATION, MANAGED_LABEL, MIG_CONFIG_LABEL, NO_SHARING, NodeSpec, OperatorView,
                    Sharing, desired_node, micro_time, node_object, node_patches, now_utc, observed_ready, parse_faults, rfc3339)
from .pods import plan_pod, pod_ip
from .volumes import (claim_class_name, claim_event, class_action, is_our_class, orphan_directories, owned_directory, plan_claim,
                      render_volume, should_delete, storage_class_object)

LOG = logging.getLogger('node_agent')
LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases'
OPERATOR_KEY = 'clusterpolicy'
CLASS_KEY = 'storageclass'
CLAIM_PREFIX = 'claim:'
VOLUME_PREFIX = 'volume:'
STORAGE_CLASS_PATH = '/apis/storage.k8s.io/v1/storageclasses'
VOLUME_PATH = '/api/v1/persistentvolumes'


@dataclass(frozen=True)
class OperatorState:
    """Cluster-wide outcome of the played operator that node rendering depends on."""

    present: bool = False
    gfd_active: bool = False
    ready: bool = False
    configs: Tuple[Tuple[str, Sharing], ...] = ()
    default_key: Optional[str] = None

    def for_node(self, config_label: Optional[str]) -> OperatorView:
        """The operator view of one node, whose device-plugin config label may pick a sharing config."""
        sharing = select_sharing(dict(self.configs), self.default_key, config_label) if self.present else NO_SHARING
        return OperatorView(self.present, self.gfd_active, self.ready, sharing)


def scaled_intervals(node_count: int) -> Tuple[float, float]:
    """(lease renew interval, node status heartbeat interval) in seconds, growing with the node count."""
    lease = min(60.0, max(10.0, node_count / 20.0))
    heartbeat = min(300.0, max(60.0, node_count / 4.0))
    return lease, heartbeat


class Agent:  # pylint: disable=too-many-instance-attributes
    """Wires informers, work queues and the log server around the pure logic."""

    def __init__(self, cfg: AgentConfig, rest: Rest, kubelet_port: int, options: argparse.Namespace):
        self.cfg, self.rest, self.kubelet_port, self.options = cfg, rest, kubelet_port, options
        self.specs: Dict[str, NodeSpec] = {name: NodeSpec(name, pool, index) for name, (pool, index) in cfg.nodes().items()}
        self.config_faults = {name: frozenset(cfg.faults_for(name, spec.pool)) for name, spec in self.specs.items()}
        self.lease_interval, self.heartbeat_interval = scaled_intervals(len(self.specs))
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.node_queue, self.pod_queue, self.operator_queue, self.volume_queue = WorkQueue(), WorkQueue(), WorkQueue(), WorkQueue()
        self.volume_dir = os.path.abspath(getattr(options, 'volume_dir', None) or os.path.join(options.cert_dir, 'volumes'))
        self.operator = OperatorState()
        self._lock = threading.Lock()
        self._settled = set()
        self._ready_reported = False
        self._first_seen: Dict[str, object] = {}
        self._pod_ips: Dict[str, str] = {}
        self._used_ips = set()
        self._serial = itertools.count()
        self._namespace_ready = False
        self._class_ensured = False
        self._foreign_class_logged = False
        namespace = cfg.operator.namespace
        self.nodes = Informer(rest, '/api/v1/nodes', self._on_node, {'labelSelector': MANAGED_LABEL + '=true'}, 'nodes', stop=self.stop)
        self.pods = Informer(rest, '/api/v1/pods', self._on_pod, {'fieldSelector': 'spec.nodeName!='}, 'pods', stop=self.stop)
        self.policies = Informer(rest, CLUSTERPOLICY_PATH, self._on_operator_input, name='clusterpolicies', missing_ok=True, stop=self.stop)
        self.daemonsets = Informer(rest, '/apis/apps/v1/namespaces/%s/daemonsets' % namespace, self._on_operator_input, name='daemonsets',
                                   stop=self.stop)
        self.configmaps = Informer(rest, '/api/v1/namespaces/%s/configmaps' % namespace, self._on_operator_input, name='configmaps',
                                   stop=self.stop)
        self.classes = Informer(rest, STORAGE_CLASS_PATH, self._on_storage_class, name='storageclasses', stop=self.stop)
        self.claims = Informer(rest, '/api/v1/persistentvolumeclaims', self._on_claim, name='claims', stop=self.stop)
        self.volumes = Informer(rest, VOLUME_PATH, self._on_volume, name='volumes', stop=self.stop)
        self.log_server = LogServer(kubelet_port, options.cert_dir, self._log_lookup)
        self.kserve = KServeController(rest, self.stop)

    # ----------------------------------------------------------------- event handlers

    def _faults(self, name: str, observed: Optional[dict]) -> FrozenSet[str]:
        annotation = ((observed or {}).get('metadata', {}).get('annotations') or {}).get(FAULTS_ANNOTATION)
        runtime = parse_faults(annotation, FAULTS)[0]
        return self.config_faults.get(name, frozenset()) | runtime

    def _on_node(self, event: str, old: Optional[dict], new: Optional[dict]):
        name = (new or old)['metadata']['name']
        if name not in self.specs:
            return
        self.node_queue.add(name)
        if new is not None:
            self._track_settled(name, new)
        if old is not None and new is not None and self._faults(name, old) != self._faults(name, new):
            unknown = parse_faults((new['metadata'].get('annotations') or {}).get(FAULTS_ANNOTATION), FAULTS)[1]
            LOG.info('node %s faults now %s%s', name, sorted(self._faults(name, new)) or 'none',
                     ' (ignored unknown: %s)' % ', '.join(unknown) if unknown else '')
            for pod in self.pods.items():
                if pod['spec'].get('nodeName') == name:
                    self.pod_queue.add(object_key(pod))
        if event == 'DELETED':
            with self._lock:
                self._settled.discard(name)

    def _track_settled(self, name: str, node: dict):
        expected = 'not-ready' not in self._faults(name, node)
        with self._lock:
            if observed_ready(node) == expected and node.get('status', {}).get('capacity'):
                self._settled.add(name)
            else:
                self._settled.discard(name)
        self._check_ready()

    def _check_ready(self):
        """Report readiness once: every node settled and the StorageClass in place (so that claims get a class)."""
        with self._lock:
            complete = len(self._settled) == len(self.specs) and self._class_ensured and not self._ready_reported
            if complete:
                self._ready_reported = True
        if complete:
            self._report_ready()

    def _report_ready(self):
        elapsed = time.monotonic() - self.started
        LOG.info('all %d nodes registered and Ready (as seen through the API) %.1fs after agent start', len(self.specs), elapsed)
        if self.options.ready_file:
            tmp = self.options.ready_file + '.tmp'
            with open(tmp, 'w', encoding='utf-8') as handle:
                json.dump({'nodes': len(self.specs), 'seconds_to_ready': round(elapsed, 2), 'pid': os.getpid()}, handle)
            os.replace(tmp, self.options.ready_file)
        if self.options.exit_when_ready:
            self.stop.set()

    def _on_pod(self, event: str, old: Optional[dict], new: Optional[dict]):
        pod = new or old
        if pod['spec'].get('nodeName') not in self.specs:
            return
        uid = pod['metadata'].get('uid')
        if event == 'DELETED':
            with self._lock:
                self._first_seen.pop(uid, None)
                self._used_ips.discard(self._pod_ips.pop(uid, None))
            return
        ip = (pod.get('status') or {}).get('podIP')
        if ip:
            with self._lock:
                self._used_ips.add(ip)
        self.pod_queue.add(object_key(pod))

    def _on_operator_input(self, _event: str, _old: Optional[dict], _new: Optional[dict]):
        self.operator_queue.add(OPERATOR_KEY)

    def _on_storage_class(self, _event: str, old: Optional[dict], new: Optional[dict]):
        name = (new or old)['metadata']['name']
        if name == self.cfg.storage.class_name:
            self.volume_queue.add(CLASS_KEY)
        if new is not None and is_our_class(new):
            for claim in self.claims.items():
                if claim_class_name(claim) == name and not claim['spec'].get('volumeName'):
                    self.volume_queue.add(CLAIM_PREFIX + object_key(claim))

    def _on_claim(self, _event: str, _old: Optional[dict], new: Optional[dict]):
        if new is not None and not (new.get('spec') or {}).get('volumeName'):
            self.volume_queue.add(CLAIM_PREFIX + object_key(new))

    def _on_volume(self, _event: str, _old: Optional[dict], new: Optional[dict]):
        if new is not None and should_delete(new):
            self.volume_queue.add(VOLUME_PREFIX + new['metadata']['name'])

    # ----------------------------------------------------------------- nodes

    def _reconcile_node(self, name: str):
        spec = self.specs.get(name)
        if spec is None:
            return
        observed = self.nodes.get(name)
        labels = (observed or {}).get('metadata', {}).get('labels') or {}
        desired = desired_node(spec, self.operator.for_node(labels.get(DEVICE_PLUGIN_CONFIG_LABEL)), self._faults(name, observed),
                               labels.get(MIG_CONFIG_LABEL))
        now = now_utc()
        if observed is None:
            try:
                created = self.rest.create('/api/v1/nodes', node_object(spec, desired, self.kubelet_port, now))
            except ApiError as exc:
                if exc.status != 409:
                    raise
                return
            self._renew_lease(name, created['metadata']['uid'])
            return
        meta_patch, status_patch = node_patches(desired, observed, now, self.heartbeat_interval)
        if meta_patch:
            self.rest.patch('/api/v1/nodes/' + name, meta_patch)
        if status_patch:
            self.rest.patch('/api/v1/nodes/%s/status' % name, status_patch)

    def _renew_lease(self, name: str, uid: Optional[str] = None):
        renew = {'spec': {'renewTime': micro_time(now_utc()), 'holderIdentity': name,
                          'leaseDurationSeconds': int(self.lease_interval * 4)}}
        try:
            self.rest.patch('%s/%s' % (LEASE_PATH, name), renew)
            return
        except ApiError as exc:
            if exc.status != 404:
                raise
        uid = uid or (self.nodes.get(name) or {}).get('metadata', {}).get('uid')
        body = {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': {'name': name}, 'spec': renew['spec']}
        if uid:
            body['metadata']['ownerReferences'] = [{'apiVersion': 'v1', 'kind': 'Node', 'name': name, 'uid': uid}]
        try:
            self.rest.create(LEASE_PATH, body)
        except ApiError as exc:
            if exc.status != 409:
                raise

    def _lease_loop(self):
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix='lease') as pool:
            while not self.stop.wait(self.lease_interval):
                names = [name for name in self.specs if self.nodes.get(name) is not None]
                for name, error in zip(names, pool.map(self._safe_renew, names)):
                    if error:
                        LOG.warning('lease %s: %s', name, error)

    def _safe_renew(self, name: str) -> Optional[str]:
        try:
            self._renew_lease(name)
            return None
        except Exception as exc:  # pylint: disable=broad-exception-caught
            return str(exc)

    def _heartbeat_loop(self):
        while not self.stop.wait(self.heartbeat_interval / 4):
            for name in self.specs:
                self.node_queue.add(name)

    def _delete_stale_nodes(self):
        for node in self.nodes.items():
            name = node['metadata']['name']
            if name not in self.specs:
                LOG.info('deleting managed node %s: not in the configuration', name)
                self.rest.delete('/api/v1/nodes/' + name)
                self.rest.delete('%s/%s' % (LEASE_PATH, name))

    # ----------------------------------------------------------------- pods

    def _allocate_ip(self, uid: str) -> str:
        with self._lock:
            if uid not in self._pod_ips:
                ip = pod_ip(next(self._serial))
                while ip in self._used_ips:
                    ip = pod_ip(next(self._serial))
                self._pod_ips[uid] = ip
                self._used_ips.add(ip)
            return self._pod_ips[uid]

    def _reconcile_pod(self, key: str):
        pod = self.pods.get(key)
        if pod is None or pod['spec'].get('nodeName') not in self.specs:
            return
        meta = pod['metadata']
        path = '/api/v1/namespaces/%s/pods/%s' % (meta['namespace'], meta['name'])
        if meta.get('deletionTimestamp'):
            body = {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'gracePeriodSeconds': 0, 'preconditions': {'uid': meta['uid']}}
            try:
                self.rest.delete(path, body)
            except ApiError as exc:
                if exc.status != 409:
                    raise
            return
        now = now_utc()
        with self._lock:
            first_seen = self._first_seen.setdefault(meta['uid'], now)
        node = pod['spec']['nodeName']
        plan = plan_pod(pod, self._faults(node, self.nodes.get(node)), self.cfg.operator.namespace, self.cfg.pods, first_seen, now,
                        self._allocate_ip(meta['uid']))
        if plan.status is not None:
            try:
                self.rest.patch(path + '/status', {'status': plan.status})
            except ApiError as exc:
                if exc.status != 404:
                    raise
        if plan.recheck_after is not None:
            self.pod_queue.add_after(key, plan.recheck_after + 0.05)

    def _log_lookup(self, namespace: str, name: str, container: str) -> Optional[tuple]:
        pod = self.pods.get('%s/%s' % (namespace, name))
        if pod is None:
            return None
        spec = self.specs.get(pod['spec'].get('nodeName'))
        text = container_log(pod, container, spec.pool.gpu_product if spec else '')
        return None if text is None else (text, pod_start(pod))

    # ----------------------------------------------------------------- operator

    def _set_operator_state(self, state: OperatorState):
        if state == self.operator:
            return
        LOG.info('operator: present=%s gfd=%s ready=%s sharing configs=%s', state.present, state.gfd_active, state.ready,
                 dict(state.configs) or 'none')
        self.operator = state
        for name in self.specs:
            self.node_queue.add(name)

    def _ensure_namespace(self, namespace: str):
        if self._namespace_ready:
            return
        try:
            self.rest.get('/api/v1/namespaces/' + namespace)
        except ApiError as exc:
            if exc.status != 404:
                raise
            try:
                self.rest.create('/api/v1/namespaces', {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}})
            except ApiError as create_exc:
                if create_exc.status != 409:
                    raise
        self._namespace_ready = True

    def _owned_daemonsets(self) -> Dict[str, dict]:
        owned = {}
        for daemonset in self.daemonsets.items():
            refs = daemonset['metadata'].get('ownerReferences') or []
            if any(ref.get('kind') == 'ClusterPolicy' for ref in refs):
                owned[daemonset['metadata']['name']] = daemonset
        return owned

    def _sync_daemonsets(self, policy: dict, wanted) -> None:
        namespace = self.cfg.operator.namespace
        base = '/apis/apps/v1/namespaces/%s/daemonsets' % namespace
        for operand in wanted:
            body = render_daemonset(operand, namespace, policy)
            existing = self.daemonsets.get('%s/%s' % (namespace, operand.name))
            if existing is None:
                try:
                    self.rest.create(base, body)
                except ApiError as exc:
                    if exc.status == 404:
                        self._namespace_ready = False  # the namespace went away; recreate it on the retry
                    if exc.status != 409:
                        raise
            elif (existing['metadata'].get('annotations') or {}).get(HASH_ANNOTATION) != body['metadata']['annotations'][HASH_ANNOTATION]:
                body['metadata']['resourceVersion'] = existing['metadata']['resourceVersion']
                self.rest.replace('%s/%s' % (base, operand.name), body)
        names = {operand.name for operand in wanted}
        for name in self._owned_daemonsets():
            if name not in names:
                self.rest.delete('%s/%s' % (base, name))

    def _write_policy_status(self, policy: dict, status: dict):
        path = '%s/%s' % (CLUSTERPOLICY_PATH, policy['metadata']['name'])
        try:
            self.rest.patch(path + '/status', {'status': status})
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.rest.patch(path, {'status': status})

    def _reconcile_operator(self, _key: str):
        policies = sorted(self.policies.items(), key=lambda p: (p['metadata'].get('creationTimestamp', ''), p['metadata']['name']))
        if not policies:
            base = '/apis/apps/v1/namespaces/%s/daemonsets' % self.cfg.operator.namespace
            for name in self._owned_daemonsets():
                self.rest.delete('%s/%s' % (base, name))
            self._set_operator_state(OperatorState())
            return
        policy, spec, now = policies[0], policies[0].get('spec') or {}, now_utc()
        for extra in policies[1:]:
            if (extra.get('status') or {}).get('state') != 'ignored':
                self._write_policy_status(extra, status_body('ignored', 'only one ClusterPolicy is honoured: %s' % policy['metadata']['name'],
                                                             self.cfg.operator.namespace, extra.get('status'), now))
        self._ensure_namespace(self.cfg.operator.namespace)
        wanted = enabled_operands(spec, any(pool.mig is not None for pool in self.cfg.pools))
        self._sync_daemonsets(policy, wanted)
        delay = self.cfg.operator.ready_delay_seconds
        age = policy_age(policy, now)
        if age < delay:
            self.operator_queue.add_after(OPERATOR_KEY, delay - age + 0.05)
        daemonsets = {d['metadata']['name']: d for d in self.daemonsets.items()}
        state, message = operator_state(policy, daemonsets, [o.name for o in wanted], now, delay, self.cfg.operator.state)
        config_name, default_key = device_plugin_config(spec)
        configmap = self.configmaps.get('%s/%s' % (self.cfg.operator.namespace, config_name)) if config_name else None
        configs = tuple(sorted(sharing_configs(configmap).items()))
        self._set_operator_state(OperatorState(True, age >= delay, state == 'ready', configs, default_key))
        status = status_body(state, message, self.cfg.operator.namespace, policy.get('status'), now)
        if status_changed(policy.get('status'), status):
            self._write_policy_status(policy, status)

    # ----------------------------------------------------------------- volumes

    def _reconcile_volumes(self, key: str):
        if key == CLASS_KEY:
            self._reconcile_class()
        elif key.startswith(CLAIM_PREFIX):
            self._provision(key[len(CLAIM_PREFIX):])
        elif key.startswith(VOLUME_PREFIX):
            self._reclaim(key[len(VOLUME_PREFIX):])

    def _reconcile_class(self):
        desired = storage_class_object(self.cfg.storage)
        name = desired['metadata']['name']
        action, patch = class_action(self.classes.get(name), desired)
        if action == 'foreign':
            if not self._foreign_class_logged:
                LOG.warning('storage class %s exists and was not created by the agent; leaving it alone', name)
                self._foreign_class_logged = True
            return
        if action == 'patch':
            LOG.info('storage class %s: updating %s', name, ', '.join(sorted(patch['metadata'])))
            self.rest.patch('%s/%s' % (STORAGE_CLASS_PATH, name), patch)
            return
        if action == 'recreate':
            # Provisioner, reclaim policy and binding mode are immutable; volumes keep their own copies of them.
            LOG.info('storage class %s: recreating with %s binding and %s reclaim policy', name, desired['volumeBindingMode'],
                     desired['reclaimPolicy'])
            self.rest.delete('%s/%s' % (STORAGE_CLASS_PATH, name))
        if action in ('create', 'recreate'):
            try:
                self.rest.create(STORAGE_CLASS_PATH, desired)
            except ApiError as exc:
                if exc.status != 409:
                    raise
            LOG.info('storage class %s (%s, %s) in place', name, desired['volumeBindingMode'], desired['reclaimPolicy'])

    def _ensure_storage_class(self):
        """Make the configured StorageClass exist before readiness is reported; retried until it works or the agent stops."""
        while not self.stop.is_set():
            try:
                self._reconcile_class()
                break
            except Exception as exc:  # pylint: disable=broad-exception-caught
                LOG.warning('storage class %s: %s; retrying', self.cfg.storage.class_name, exc)
                self.stop.wait(2.0)
        with self._lock:
            self._class_ensured = True
        self._check_ready()

    def _claim_event(self, claim: dict, reason: str, message: str, warning: bool = False):
        body = claim_event(claim, reason, message, rfc3339(now_utc()), warning)
        try:
            self.rest.create('/api/v1/namespaces/%s/events' % claim['metadata']['namespace'], body)
        except ApiError as exc:
            LOG.debug('event %s for claim %s: %s', reason, object_key(claim), exc)

    def _provision(self, key: str):
        claim = self.claims.get(key)
        if claim is None:
            return
        class_name = claim_class_name(claim)
        storage_class = self.classes.get(class_name) if class_name else None
        plan = plan_claim(claim, storage_class)
        if not plan.provision:
            LOG.debug('claim %s: not provisioning: %s', key, plan.reason)
            return
        body = render_volume(claim, storage_class, self.volume_dir, plan.node)
        name = body['metadata']['name']
        if self.volumes.get(name) is not None:
            return
        path = body['spec']['hostPath']['path']
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)  # any container user may write, as with the usual hostPath provisioners
        try:
            self.rest.create(VOLUME_PATH, body)
        except ApiError as exc:
            if exc.status != 409:
                self._claim_event(claim, 'ProvisioningFailed', 'failed to provision volume %s: %s' % (name, exc), warning=True)
                raise
            return
        LOG.info('claim %s: provisioned %s (%s%s)', key, name, body['spec']['capacity']['storage'],
                 ', node %s' % plan.node if plan.node and 'nodeAffinity' in body['spec'] else '')
        self._claim_event(claim, 'ProvisioningSucceeded', 'Successfully provisioned volume %s' % name)

    def _reclaim(self, name: str):
        volume = self.volumes.get(name)
        if volume is None or not should_delete(volume):
            return
        directory = owned_directory(volume, self.volume_dir)
        if directory and os.path.isdir(directory):
            shutil.rmtree(directory)
        body = {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'preconditions': {'uid': volume['metadata']['uid']}}
        try:
            self.rest.delete('%s/%s' % (VOLUME_PATH, name), body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            return
        ref = volume['spec'].get('claimRef') or {}
        LOG.info('volume %s released by claim %s/%s: deleted (reclaim policy Delete)', name, ref.get('namespace'), ref.get('name'))

    def _remove_orphan_directories(self):
        """Remove volume directories whose PV is gone (a wiped etcd leaves them behind); runs once the PV cache is synced."""
        try:
            entries = os.listdir(self.volume_dir)
        except FileNotFoundError:
            return
        for entry in orphan_directories(entries, [v['metadata']['name'] for v in self.volumes.items()]):
            LOG.info('removing volume directory %s: no such PersistentVolume', entry)
            shutil.rmtree(os.path.join(self.volume_dir, entry), ignore_errors=True)

    # ----------------------------------------------------------------- lifecycle

    def run(self):
        """Run until stopped by a signal (or, with --exit-when-ready, until every node is Ready)."""
        self.log_server.start()
        LOG.info('kubelet endpoint on https://127.0.0.1:%d; %d nodes in %d pool(s); lease every %.0fs, status every %.0fs',
                 self.log_server.port, len(self.specs), len(self.cfg.pools), self.lease_interval, self.heartbeat_interval)
        informers = (self.nodes, self.pods, self.policies, self.daemonsets, self.configmaps, self.classes, self.claims, self.volumes)
        for informer in informers:
            informer.start()
        for informer in informers:
            while not informer.synced.wait(0.5):
                if self.stop.is_set():
                    return
        self._delete_stale_nodes()
        os.makedirs(self.volume_dir, exist_ok=True)
        self._remove_orphan_directories()
        self._ensure_storage_class()
        start_workers(self.node_queue, self._reconcile_node, self.options.workers, 'node')
        start_workers(self.pod_queue, self._reconcile_pod, 8, 'pod')
        start_workers(self.operator_queue, self._reconcile_operator, 1, 'operator')
        start_workers(self.volume_queue, self._reconcile_volumes, 2, 'volumes')
        self.kserve.start()
        for name in self.specs:
            self.node_queue.add(name)
        for target, name in ((self._lease_loop, 'leases'), (self._heartbeat_loop, 'heartbeats')):
            threading.Thread(target=target, name=name, daemon=True).start()
        self.stop.wait()
        LOG.info('stopping')
        for queue in (self.node_queue, self.pod_queue, self.operator_queue, self.volume_queue):
            queue.shutdown()
        self.log_server.stop()


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description='Simulated kubelet, device plugin and GPU operator for the local testbed.')
    parser.add_argument('--kubeconfig', required=False, default=os.environ.get('KUBECONFIG'), help='kubeconfig of the testbed')
    parser.add_argument('--config', required=True, help='pool configuration YAML')
    parser.add_argument('--kubelet-port', type=int, default=10250, help='port of the HTTPS kubelet endpoint on 127.0.0.1')
    parser.add_argument('--cert-dir', default=os.path.expanduser('~/.cache/mlops-testbed/state/node-agent'),
                        help='where the serving certificate is generated')
    parser.add_argument('--volume-dir', help='where provisioned hostPath volumes get their directories (default: <cert-dir>/volumes)')
    parser.add_argument('--ready-file', help='file written once every node is registered and Ready')
    parser.add_argument('--exit-when-ready', action='store_true', help='exit once every node is registered and Ready')
    parser.add_argument('--check-config', action='store_true', help='validate the configuration and exit')
    parser.add_argument('--workers', type=int, default=16, help='concurrent node registrations/updates')
    parser.add_argument('--log-level', default='INFO', choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    options = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=options.log_level, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        cfg = load_config(options.config)
    except ConfigError as exc:
        LOG.error('%s', exc)
        return 2
    if options.check_config:
        print('%s: %d nodes in %d pool(s)' % (options.config, len(cfg.nodes()), len(cfg.pools)))
        return 0
    if not options.kubeconfig:
        LOG.error('--kubeconfig (or KUBECONFIG) is required')
        return 2
    if options.ready_file and os.path.exists(options.ready_file):
        os.remove(options.ready_file)
    agent = Agent(cfg, Rest(options.kubeconfig, pool_size=options.workers + 16), options.kubelet_port, options)

    def on_signal(signum, _frame):
        LOG.info('received signal %d', signum)
        agent.stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run()
    return 0
