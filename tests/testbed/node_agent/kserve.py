"""The played KServe controller: what a user of KServe's RawDeployment ("Standard") mode observes.

For every InferenceService the controller creates the predictor Deployment and Service (owned by the
InferenceService, so that garbage collection removes them), and writes ``status``: the conditions
``PredictorReady``, ``IngressReady`` and ``Ready``, ``url``/``address.url`` and ``modelStatus``. The real
scheduler and the agent's kubelet decide whether the predictor pods run; when they do not, the failure is
copied into the conditions: an unschedulable pod's scheduler message (``0/4 nodes are available: 2
Insufficient nvidia.com/gpu, ...``) or a waiting container's reason. The functions at the top are pure and
unit-tested; ``KServeController`` wires them to informers and a work queue.

Not played: Knative ("Serverless") mode, whose InferenceServices are marked not ready with the reason
``ServerlessNotAvailable``, webhooks, the storage initializer, autoscalers, transformers and explainers.
"""

import hashlib
import json
import logging
import threading
from typing import Dict, Iterable, List, Optional, Tuple

from .kube import ApiError, Informer, Rest, WorkQueue, start_workers
from .model import now_utc, rfc3339

LOG = logging.getLogger('node_agent.kserve')

GROUP = 'serving.kserve.io'
ISVC_PATH = '/apis/serving.kserve.io/v1beta1/inferenceservices'
RUNTIME_PATH = '/apis/serving.kserve.io/v1alpha1/servingruntimes'
CLUSTER_RUNTIME_PATH = '/apis/serving.kserve.io/v1alpha1/clusterservingruntimes'
ISVC_LABEL = 'serving.kserve.io/inferenceservice'
MODE_ANNOTATION = 'serving.kserve.io/deploymentMode'
HASH_ANNOTATION = 'testbed.mlops.platform/spec-hash'
MODEL_CONTAINER = 'kserve-container'
MODEL_PORT = 8080
STANDARD, KNATIVE = 'Standard', 'Knative'
MODE_ALIASES = {'RawDeployment': STANDARD, 'Standard': STANDARD, 'Serverless': KNATIVE, 'Knative': KNATIVE}
# Pod fields of the predictor (a PodSpec extension) copied onto the Deployment's pod template.
POD_FIELDS = ('tolerations', 'nodeSelector', 'affinity', 'volumes', 'priorityClassName', 'serviceAccountName', 'securityContext',
              'imagePullSecrets', 'runtimeClassName', 'schedulerName', 'topologySpreadConstraints', 'hostIPC')
# Container fields of the model spec merged over the runtime's container.
CONTAINER_FIELDS = ('image', 'args', 'command', 'env', 'resources', 'volumeMounts', 'securityContext', 'ports', 'imagePullPolicy')


# lastFailureInfo.reason values of the CRD that mean the spec cannot be served as written.
SPEC_FAILURES = ('NoSupportingRuntime', 'RuntimeNotRecognized', 'InvalidPredictorSpec', 'RuntimeDisabled')
# Container states reported as a failed model load.
CONTAINER_FAILURES = ('CrashLoopBackOff', 'ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError',
                      'CreateContainerError', 'Error', 'OOMKilled', 'ContainerCannotRun')


class Outcome:  # pylint: disable=too-few-public-methods
    """Why an InferenceService is not ready: a condition reason and message."""

    def __init__(self, reason: str, message: str):
        self.reason, self.message = reason, message

    def __eq__(self, other):
        return isinstance(other, Outcome) and (self.reason, self.message) == (other.reason, other.message)

    def __repr__(self):
        return 'Outcome(%r, %r)' % (self.reason, self.message)


def deployment_mode(isvc: dict, default: str = STANDARD) -> str:
    """``Standard`` or ``Knative``, from the InferenceService's annotation or the controller default."""
    annotation = ((isvc.get('metadata') or {}).get('annotations') or {}).get(MODE_ANNOTATION)
    return MODE_ALIASES.get(annotation or default, annotation or default)


def predictor_name(isvc: dict) -> str:
    """Name of the predictor's Deployment and Service."""
    return '%s-predictor' % isvc['metadata']['name']


def _model(isvc: dict) -> dict:
    return ((isvc.get('spec') or {}).get('predictor') or {}).get('model') or {}


def _supports(runtime: dict, model_format: dict) -> bool:
    for supported in (runtime.get('spec') or {}).get('supportedModelFormats') or []:
        if supported.get('name') == model_format.get('name') and (
                not model_format.get('version') or not supported.get('version') or supported.get('version') == model_format.get('version')):
            return True
    return False


def resolve_runtime(isvc: dict, runtimes: Iterable[dict], cluster_runtimes: Iterable[dict]) -> Tuple[Optional[dict], Optional[Outcome]]:
    """The ServingRuntime (namespaced first, then cluster-wide) that serves the predictor, or why there is none.

    A model ``image`` set on the predictor needs no runtime container image, but a named runtime must still exist.
    """
    model = _model(isvc)
    namespace = isvc['metadata'].get('namespace')
    local = [r for r in runtimes if r['metadata'].get('namespace') == namespace and not (r.get('spec') or {}).get('disabled')]
    cluster = [r for r in cluster_runtimes if not (r.get('spec') or {}).get('disabled')]
    name = model.get('runtime')
    if name:
        for runtime in local + cluster:
            if runtime['metadata']['name'] == name:
                if not _supports(runtime, model.get('modelFormat') or {}):
                    return None, Outcome('RuntimeNotRecognized', 'specified runtime %s does not support specified framework/version %s' % (
                        name, (model.get('modelFormat') or {}).get('name')))
                return runtime, None
        return None, Outcome('RuntimeNotRecognized', 'No ServingRuntimes or ClusterServingRuntimes with the name: %s' % name)
    for runtime in sorted(local, key=lambda r: r['metadata']['name']) + sorted(cluster, key=lambda r: r['metadata']['name']):
        spec = runtime.get('spec') or {}
        formats = [f for f in spec.get('supportedModelFormats') or [] if f.get('autoSelect')]
        if any(_supports({'spec': {'supportedModelFormats': [f]}}, model.get('modelFormat') or {}) for f in formats):
            return runtime, None
    if model.get('image'):
        return None, None
    return None, Outcome('NoSupportingRuntime', 'No runtime found to support predictor with model type: %s' % (
        (model.get('modelFormat') or {}).get('name')))


def model_container(isvc: dict, runtime: Optional[dict]) -> dict:
    """The ``kserve-container``: the runtime's first container with the model spec's container fields over it."""
    base = {}
    if runtime is not None:
        containers = (runtime.get('spec') or {}).get('containers') or []
        base = json.loads(json.dumps(containers[0])) if containers else {}
    model = _model(isvc)
    container = {key: value for key, value in base.items() if key != 'name'}
    for key in CONTAINER_FIELDS:
        if key in model:
            container[key] = model[key]
    container['name'] = MODEL_CONTAINER
    if model.get('storageUri'):
        env = [e for e in container.get('env') or [] if e.get('name') != 'STORAGE_URI']
        container['env'] = env + [{'name': 'STORAGE_URI', 'value': model['storageUri']}]
    return container


def spec_hash(body: dict) -> str:
    """Stable hash of what the controller renders, to detect a needed update."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def owner_reference(isvc: dict) -> dict:
    """Controller reference to the InferenceService."""
    return {'apiVersion': '%s/v1beta1' % GROUP, 'kind': 'InferenceService', 'name': isvc['metadata']['name'],
            'uid': isvc['metadata']['uid'], 'controller': True, 'blockOwnerDeletion': True}


def _labels(isvc: dict) -> Dict[str, str]:
    return {ISVC_LABEL: isvc['metadata']['name'], 'component': 'predictor', 'app': 'isvc.%s' % predictor_name(isvc)}


def render_deployment(isvc: dict, runtime: Optional[dict]) -> dict:
    """The predictor Deployment of a Standard-mode InferenceService."""
    predictor = (isvc.get('spec') or {}).get('predictor') or {}
    labels = _labels(isvc)
    pod_spec = {key: predictor[key] for key in POD_FIELDS if key in predictor}
    pod_spec['containers'] = [model_container(isvc, runtime)]
    pod_spec.setdefault('automountServiceAccountToken', False)
    replicas = predictor.get('minReplicas')
    template_labels = dict(labels)
    template_labels.update((isvc['metadata'].get('labels') or {}))
    spec = {
        'replicas': 1 if replicas is None else max(int(replicas), 1),
        'selector': {'matchLabels': {'app': labels['app']}},
        'template': {'metadata': {'labels': template_labels}, 'spec': pod_spec},
    }
    digest = spec_hash(spec)
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment',
            'metadata': {'name': predictor_name(isvc), 'namespace': isvc['metadata']['namespace'], 'labels': labels,
                         'annotations': {HASH_ANNOTATION: digest}, 'ownerReferences': [owner_reference(isvc)]},
            'spec': spec}


def render_service(isvc: dict) -> dict:
    """The predictor Service (port 80 to the model server's 8080)."""
    labels = _labels(isvc)
    return {'apiVersion': 'v1', 'kind': 'Service',
            'metadata': {'name': predictor_name(isvc), 'namespace': isvc['metadata']['namespace'], 'labels': labels,
                         'ownerReferences': [owner_reference(isvc)]},
            'spec': {'selector': {'app': labels['app']}, 'ports': [{'name': 'http', 'port': 80, 'targetPort': MODEL_PORT, 'protocol': 'TCP'}]}}


def internal_url(isvc: dict) -> str:
    """The cluster-local address of the predictor."""
    return 'http://%s.%s.svc.cluster.local' % (predictor_name(isvc), isvc['metadata']['namespace'])


def _condition(conditions: List[dict], kind: str) -> dict:
    return next((c for c in conditions or [] if c.get('type') == kind), {})


def pod_problem(pods: Iterable[dict]) -> Optional[Outcome]:
    """The first reason why a predictor pod does not run: unschedulable, or a waiting/terminated container."""
    for pod in sorted(pods, key=lambda p: p['metadata']['name']):
        status = pod.get('status') or {}
        scheduled = _condition(status.get('conditions'), 'PodScheduled')
        if scheduled.get('status') == 'False':
            return Outcome(scheduled.get('reason') or 'Unschedulable', 'pod %s: %s' % (pod['metadata']['name'], scheduled.get('message') or 'not scheduled'))
        for container in (status.get('initContainerStatuses') or []) + (status.get('containerStatuses') or []):
            state = container.get('state') or {}
            waiting, terminated = state.get('waiting') or {}, state.get('terminated') or {}
            if waiting.get('reason') and waiting['reason'] not in ('ContainerCreating', 'PodInitializing'):
                detail = waiting.get('message') or waiting['reason']
                return Outcome(waiting['reason'], 'pod %s container %s: %s' % (pod['metadata']['name'], container.get('name'), detail))
            if terminated and terminated.get('exitCode', 0) != 0:
                return Outcome(terminated.get('reason') or 'Error', 'pod %s container %s exited with %s' % (
                    pod['metadata']['name'], container.get('name'), terminated.get('exitCode')))
    return None


def deployment_available(deployment: Optional[dict]) -> bool:
    """The Deployment's rollout is complete and it has its replicas available."""
    if not deployment:
        return False
    status = deployment.get('status') or {}
    want = (deployment.get('spec') or {}).get('replicas', 1)
    return (status.get('observedGeneration', 0) >= deployment['metadata'].get('generation', 1)
            and status.get('updatedReplicas', 0) >= want and status.get('availableReplicas', 0) >= want
            and _condition(status.get('conditions'), 'Available').get('status') == 'True')


def _conditions(ready: bool, outcome: Optional[Outcome], now: str, previous: Optional[List[dict]]) -> List[dict]:
    result = []
    for kind in ('IngressReady', 'PredictorReady', 'Ready'):
        status = 'True' if ready or kind == 'IngressReady' else 'False'
        condition = {'type': kind, 'status': status}
        if status == 'False' and outcome is not None:
            condition.update(reason=outcome.reason, message=outcome.message)
        old = _condition(previous or [], kind)
        same = old.get('status') == status and old.get('reason') == condition.get('reason') and old.get('message') == condition.get('message')
        condition['lastTransitionTime'] = old.get('lastTransitionTime', now) if same else now
        result.append(condition)
    return result


def isvc_status(isvc: dict, deployment: Optional[dict], pods: Iterable[dict], outcome: Optional[Outcome], now: str) -> dict:
    """The InferenceService status the user sees, given its predictor Deployment and pods (or a reason it has none)."""
    previous = (isvc.get('status') or {}).get('conditions')
    ready = outcome is None and deployment_available(deployment)
    if outcome is None and not ready:
        outcome = pod_problem(pods) or Outcome('MinimumReplicasUnavailable' if deployment else 'PredictorNotCreated',
                                               'Deployment %s does not have minimum availability' % predictor_name(isvc))
    status = {'observedGeneration': isvc['metadata'].get('generation', 1), 'conditions': _conditions(ready, outcome, now, previous),
              'modelStatus': {'states': {'activeModelState': 'Loaded' if ready else 'Pending', 'targetModelState': 'Loaded'},
                              'transitionStatus': 'UpToDate' if ready else 'InProgress'}}
    if ready:
        status['url'] = internal_url(isvc)
        status['address'] = {'url': internal_url(isvc)}
        status['components'] = {'predictor': {'url': internal_url(isvc)}}
    elif outcome is not None:
        failure = failure_info(outcome)
        if failure is not None:
            status['modelStatus']['lastFailureInfo'] = failure
            status['modelStatus']['transitionStatus'] = 'InvalidSpec' if failure['reason'] in SPEC_FAILURES else 'BlockedByFailedLoad'
            status['modelStatus']['states']['activeModelState'] = 'FailedToLoad' if failure['reason'] == 'ModelLoadFailed' else 'Pending'
    return status


def failure_info(outcome: Outcome) -> Optional[dict]:
    """``modelStatus.lastFailureInfo`` for an outcome, in the CRD's vocabulary; None for a pod still waiting to be scheduled."""
    if outcome.reason in SPEC_FAILURES:
        return {'reason': outcome.reason, 'message': outcome.message}
    if outcome.reason in CONTAINER_FAILURES:
        return {'reason': 'ModelLoadFailed', 'message': '%s: %s' % (outcome.reason, outcome.message)}
    return None


def status_changed(old: Optional[dict], new: dict) -> bool:
    """True when writing ``new`` would change what the user sees (timestamps of unchanged conditions aside)."""
    def strip(status):
        status = json.loads(json.dumps(status or {}))
        for condition in status.get('conditions') or []:
            condition.pop('lastTransitionTime', None)
        return status
    return strip(old) != strip(new)


def isvc_key_of(obj: dict) -> Optional[str]:
    """``namespace/name`` of the InferenceService a Deployment, Service or pod belongs to."""
    meta = obj.get('metadata') or {}
    name = (meta.get('labels') or {}).get(ISVC_LABEL)
    return '%s/%s' % (meta.get('namespace'), name) if name and meta.get('namespace') else None


class KServeController:
    """Informers on InferenceServices, runtimes and the predictor Deployments and pods; one work queue keyed by InferenceService."""

    def __init__(self, rest: Rest, stop: threading.Event, default_mode: str = STANDARD):
        self.rest, self.stop, self.default_mode = rest, stop, default_mode
        self.queue = WorkQueue()
        selector = {'labelSelector': ISVC_LABEL}
        self.isvcs = Informer(rest, ISVC_PATH, self._on_isvc, name='inferenceservices', missing_ok=True, stop=stop)
        self.runtimes = Informer(rest, RUNTIME_PATH, self._on_runtime, name='servingruntimes', missing_ok=True, stop=stop)
        self.cluster_runtimes = Informer(rest, CLUSTER_RUNTIME_PATH, self._on_runtime, name='clusterservingruntimes', missing_ok=True, stop=stop)
        self.deployments = Informer(rest, '/apis/apps/v1/deployments', self._on_owned, selector, name='predictor-deployments', stop=stop)
        self.pods = Informer(rest, '/api/v1/pods', self._on_owned, selector, name='predictor-pods', stop=stop)

    def _on_isvc(self, _event: str, old: Optional[dict], new: Optional[dict]):
        obj = new or old
        self.queue.add('%s/%s' % (obj['metadata']['namespace'], obj['metadata']['name']))

    def _on_runtime(self, _event: str, _old: Optional[dict], _new: Optional[dict]):
        for isvc in self.isvcs.items():
            self.queue.add('%s/%s' % (isvc['metadata']['namespace'], isvc['metadata']['name']))

    def _on_owned(self, _event: str, old: Optional[dict], new: Optional[dict]):
        key = isvc_key_of(new or old)
        if key:
            self.queue.add(key)

    def start(self):
        """Start the informers and one worker; returns at once."""
        for informer in (self.isvcs, self.runtimes, self.cluster_runtimes, self.deployments, self.pods):
            informer.start()
        start_workers(self.queue, self.reconcile, 2, 'kserve')
        threading.Thread(target=self._shutdown_on_stop, name='kserve-stop', daemon=True).start()

    def _shutdown_on_stop(self):
        self.stop.wait()
        self.queue.shutdown()

    def _ensure(self, path: str, body: dict, existing: Optional[dict]):
        if existing is None:
            try:
                self.rest.create(path, body)
            except ApiError as exc:
                if exc.status != 409:
                    raise
            return
        if (existing['metadata'].get('annotations') or {}).get(HASH_ANNOTATION) != body['metadata'].get('annotations', {}).get(HASH_ANNOTATION):
            body = json.loads(json.dumps(body))
            body['metadata']['resourceVersion'] = existing['metadata']['resourceVersion']
            self.rest.replace('%s/%s' % (path, body['metadata']['name']), body)

    def reconcile(self, key: str):
        """Bring one InferenceService's predictor and status in line with its spec."""
        isvc = self.isvcs.get(key)
        if isvc is None or isvc['metadata'].get('deletionTimestamp'):
            return  # owned objects go with it (garbage collection)
        namespace = isvc['metadata']['namespace']
        name = predictor_name(isvc)
        deployment, pods, outcome = None, [], None
        if deployment_mode(isvc, self.default_mode) != STANDARD:
            outcome = Outcome('ServerlessNotAvailable', 'deployment mode %s needs Knative Serving, which the testbed does not run'
                              % deployment_mode(isvc, self.default_mode))
        else:
            runtime, outcome = resolve_runtime(isvc, self.runtimes.items(), self.cluster_runtimes.items())
            if outcome is None:
                self._ensure('/apis/apps/v1/namespaces/%s/deployments' % namespace, render_deployment(isvc, runtime),
                             self.deployments.get('%s/%s' % (namespace, name)))
                if self.rest_get_service(namespace, name) is None:
                    self._ensure('/api/v1/namespaces/%s/services' % namespace, render_service(isvc), None)
                deployment = self.deployments.get('%s/%s' % (namespace, name))
                pods = [p for p in self.pods.items() if isvc_key_of(p) == key and not p['metadata'].get('deletionTimestamp')]
        status = isvc_status(isvc, deployment, pods, outcome, rfc3339(now_utc()))
        if status_changed(isvc.get('status'), status):
            path = '%s/%s' % (ISVC_PATH.replace('/inferenceservices', '/namespaces/%s/inferenceservices' % namespace), isvc['metadata']['name'])
            self.rest.patch(path + '/status', {'status': status})
            LOG.info('inferenceservice %s: ready=%s%s', key, status['conditions'][-1]['status'],
                     '' if status['conditions'][-1]['status'] == 'True' else ' (%s)' % status['conditions'][-1].get('reason'))

    def rest_get_service(self, namespace: str, name: str) -> Optional[dict]:
        """The predictor Service, or None."""
        try:
            return self.rest.get('/api/v1/namespaces/%s/services/%s' % (namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
