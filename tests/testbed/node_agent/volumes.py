"""Pure logic of the hostPath volume provisioner: the StorageClass, which claims to provision, the PV for a claim, and
which volumes to delete.

kube-controller-manager's PV controller does the binding: it marks a claim of a class with an external provisioner
with the ``storage-provisioner`` annotation (for ``WaitForFirstConsumer`` only after the scheduler picked a node and
set ``volume.kubernetes.io/selected-node``), then binds the claim to the PV created here, which is pre-bound through
its ``claimRef``. Once the claim is deleted the PV controller marks the PV ``Released``; deleting it is left to us.
"""

import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from .config import StorageConfig

PROVISIONER = 'testbed.mlops.platform/hostpath'
MANAGED_LABEL = 'testbed.mlops.platform/managed'
DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class'
BETA_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class'
PROVISIONER_ANNOTATIONS = ('volume.kubernetes.io/storage-provisioner', 'volume.beta.kubernetes.io/storage-provisioner')
SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node'
PROVISIONED_BY_ANNOTATION = 'pv.kubernetes.io/provisioned-by'
HOSTNAME_LABEL = 'kubernetes.io/hostname'
WAIT_FOR_FIRST_CONSUMER = 'WaitForFirstConsumer'
# Fields the API server refuses to change on an existing StorageClass.
IMMUTABLE_CLASS_FIELDS = ('provisioner', 'parameters', 'reclaimPolicy', 'volumeBindingMode')
VOLUME_DIR_RE = re.compile(r'^pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')


@dataclass(frozen=True)
class ClaimPlan:
    """Whether to provision a volume for a claim now; ``reason`` says why not, ``node`` is the scheduler's choice."""

    provision: bool
    reason: str = ''
    node: Optional[str] = None


def storage_class_object(storage: StorageConfig) -> dict:
    """The StorageClass the agent keeps in the cluster."""
    return {
        'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass',
        'metadata': {'name': storage.class_name, 'labels': {MANAGED_LABEL: 'true'},
                     'annotations': {DEFAULT_CLASS_ANNOTATION: 'true' if storage.default else 'false'}},
        'provisioner': PROVISIONER,
        'reclaimPolicy': storage.reclaim_policy,
        'volumeBindingMode': storage.binding_mode,
    }


def class_action(existing: Optional[Mapping], desired: Mapping) -> Tuple[str, Optional[dict]]:
    """What to do about the agent's StorageClass: ``create``, ``recreate`` (an immutable field differs), ``patch`` (with
    the merge patch for labels and annotations), ``foreign`` (a class of that name the agent did not create: left
    alone) or ``none``."""
    if existing is None:
        return 'create', None
    meta = existing.get('metadata') or {}
    if (meta.get('labels') or {}).get(MANAGED_LABEL) != 'true':
        return 'foreign', None
    if meta.get('deletionTimestamp'):
        return 'none', None
    if any((existing.get(key) or None) != (desired.get(key) or None) for key in IMMUTABLE_CLASS_FIELDS):
        return 'recreate', None
    patch = {}
    for section in ('labels', 'annotations'):
        have = meta.get(section) or {}
        changed = {key: value for key, value in desired['metadata'][section].items() if have.get(key) != value}
        if changed:
            patch[section] = changed
    return ('patch', {'metadata': patch}) if patch else ('none', None)


def claim_class_name(claim: Mapping) -> Optional[str]:
    """The class a claim asks for (``spec.storageClassName``, else the beta annotation), None when it names none."""
    name = (claim.get('spec') or {}).get('storageClassName')
    if name is None:
        name = ((claim.get('metadata') or {}).get('annotations') or {}).get(BETA_CLASS_ANNOTATION)
    return name or None


def claim_provisioner(claim: Mapping) -> Optional[str]:
    """The provisioner the PV controller asked for on the claim, if it did."""
    annotations = (claim.get('metadata') or {}).get('annotations') or {}
    return next((annotations[key] for key in PROVISIONER_ANNOTATIONS if annotations.get(key)), None)


def is_our_class(storage_class: Optional[Mapping]) -> bool:
    """True for a StorageClass provisioned by this agent."""
    return bool(storage_class) and storage_class.get('provisioner') == PROVISIONER


def plan_claim(claim: Mapping, storage_class: Optional[Mapping]) -> ClaimPlan:
    """Decide whether a claim needs a volume from us now.

    Like an external provisioner, it waits for the PV controller's ``storage-provisioner`` annotation (set only when no
    existing volume matches) and, under ``WaitForFirstConsumer``, for the scheduler's selected node.
    """
    meta, spec = claim.get('metadata') or {}, claim.get('spec') or {}
    if meta.get('deletionTimestamp'):
        return ClaimPlan(False, 'being deleted')
    if spec.get('volumeName'):
        return ClaimPlan(False, 'already bound to %s' % spec['volumeName'])
    if claim_provisioner(claim) != PROVISIONER:
        return ClaimPlan(False, 'not (yet) handed to %s by the PV controller' % PROVISIONER)
    if storage_class is None:
        return ClaimPlan(False, 'storage class %r not found' % claim_class_name(claim))
    if not is_our_class(storage_class):
        return ClaimPlan(False, 'storage class %r has provisioner %r' % (claim_class_name(claim), storage_class.get('provisioner')))
    if not ((spec.get('resources') or {}).get('requests') or {}).get('storage'):
        return ClaimPlan(False, 'no storage request')
    node = (meta.get('annotations') or {}).get(SELECTED_NODE_ANNOTATION)
    if storage_class.get('volumeBindingMode') == WAIT_FOR_FIRST_CONSUMER and not node:
        return ClaimPlan(False, 'waiting for the scheduler to select a node')
    return ClaimPlan(True, node=node)


def volume_name(claim: Mapping) -> str:
    """Name of the PV provisioned for a claim: ``pvc-<claim uid>``."""
    return 'pvc-' + claim['metadata']['uid']


def render_volume(claim: Mapping, storage_class: Mapping, volume_dir: str, node: Optional[str]) -> dict:
    """The PV for a claim: its capacity and access modes, pre-bound to it, a hostPath under ``volume_dir`` and, when the
    class waits for the first consumer, node affinity for the node the scheduler selected."""
    meta, spec = claim['metadata'], claim.get('spec') or {}
    name = volume_name(claim)
    pv_spec = {
        'capacity': {'storage': spec['resources']['requests']['storage']},
        'accessModes': list(spec.get('accessModes') or ['ReadWriteOnce']),
        'persistentVolumeReclaimPolicy': storage_class.get('reclaimPolicy') or 'Delete',
        'storageClassName': storage_class['metadata']['name'],
        'volumeMode': spec.get('volumeMode') or 'Filesystem',
        'claimRef': {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'namespace': meta['namespace'], 'name': meta['name'],
                     'uid': meta['uid']},
        'hostPath': {'path': os.path.join(volume_dir, name), 'type': 'DirectoryOrCreate'},
    }
    if storage_class.get('volumeBindingMode') == WAIT_FOR_FIRST_CONSUMER and node:
        term = {'matchExpressions': [{'key': HOSTNAME_LABEL, 'operator': 'In', 'values': [node]}]}
        pv_spec['nodeAffinity'] = {'required': {'nodeSelectorTerms': [term]}}
    return {'apiVersion': 'v1', 'kind': 'PersistentVolume',
            'metadata': {'name': name, 'annotations': {PROVISIONED_BY_ANNOTATION: PROVISIONER}},
            'spec': pv_spec}


def is_ours(volume: Mapping) -> bool:
    """True for a PV this provisioner created."""
    return ((volume.get('metadata') or {}).get('annotations') or {}).get(PROVISIONED_BY_ANNOTATION) == PROVISIONER


def should_delete(volume: Mapping) -> bool:
    """True for a PV of ours that the PV controller released and whose reclaim policy is Delete (Retain is kept)."""
    return (is_ours(volume) and not (volume.get('metadata') or {}).get('deletionTimestamp')
            and (volume.get('status') or {}).get('phase') == 'Released'
            and (volume.get('spec') or {}).get('persistentVolumeReclaimPolicy') == 'Delete')


def owned_directory(volume: Mapping, volume_dir: str) -> Optional[str]:
    """The volume's hostPath directory when it is one the provisioner made directly under ``volume_dir``, else None (a
    PV pointing elsewhere never gets anything removed)."""
    path = ((volume.get('spec') or {}).get('hostPath') or {}).get('path')
    if not path or not is_ours(volume):
        return None
    path = os.path.normpath(path)
    if os.path.dirname(path) != os.path.normpath(volume_dir) or os.path.basename(path) != volume['metadata']['name']:
        return None
    return path


def orphan_directories(entries, volume_names) -> list:
    """Entries of the volume directory that look like provisioned volumes but whose PV no longer exists (for example after
    the testbed's etcd data was wiped)."""
    names = set(volume_names)
    return sorted(entry for entry in entries if VOLUME_DIR_RE.match(entry) and entry not in names)


def claim_event(claim: Mapping, reason: str, message: str, now: str, warning: bool = False) -> dict:
    """A core/v1 Event about a claim, as an external provisioner reports its work (``kubectl describe pvc``)."""
    meta = claim['metadata']
    return {
        'apiVersion': 'v1', 'kind': 'Event',
        'metadata': {'generateName': meta['name'] + '.', 'namespace': meta['namespace']},
        'involvedObject': {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'namespace': meta['namespace'], 'name': meta['name'],
                           'uid': meta['uid']},
        'reason': reason, 'message': message, 'type': 'Warning' if warning else 'Normal',
        'source': {'component': PROVISIONER}, 'reportingComponent': PROVISIONER,
        'firstTimestamp': now, 'lastTimestamp': now, 'count': 1,
    }
