"""The kserve role: its Helm values against the real charts, its validation, and its prerequisite check on the testbed.

The converge/idempotence/verify path (InferenceServices Ready on the testbed, the named cause when a GPU
predictor cannot fit) is molecule/kserve.
"""

import json
import os
import subprocess
import sys
import tempfile

import pytest
import yaml

from upstream import ROOT, assert_conforms, conformance_errors, render_role_values

STAND_IN = os.path.join(ROOT, 'tests', 'testbed', 'charts', 'kserve')
HELM = os.path.join(os.environ.get('MLOPS_TESTBED_CACHE', os.path.expanduser('~/.cache/mlops-testbed')), 'bin', 'helm')
CPU = {'name': 'fraud', 'namespace': 'serving', 'runtime_image': 'kserve/sklearnserver:v0.20.0', 'storage_uri': 's3://models/fraud/'}


def render(extra=None, fact=None):
    return render_role_values('kserve', extra or {}, fact=fact)


def render_error(extra, tasks_from='validate'):
    with pytest.raises(AssertionError) as info:
        render_role_values('kserve', extra, fact='kserve_state', tasks_from=tasks_from)
    return str(info.value)


@pytest.mark.parametrize('mode, chart_mode', [('Standard', 'Standard'), ('RawDeployment', 'Standard'), ('Serverless', 'Knative')])
def test_values_conform_to_the_real_kserve_resources_chart(mode, chart_mode):
    values = render({'kserve_deployment_mode': mode})
    assert_conforms('kserve-resources', values)
    assert values['kserve']['controller']['deploymentMode'] == chart_mode
    tags = [values['kserve'][part]['tag'] for part in ('controller', 'agent', 'router', 'storage')]
    assert tags == ['v0.20.0'] * 4  # upstream leaves them empty; the role pins them


def test_kserve_crd_values_conform_and_a_misspelt_override_does_not():
    assert_conforms('kserve-crd', render(fact='kserve_crd_release_values'))
    values = render({'kserve_release_overrides': {'kserve': {'controller': {'deploymentMod': 'Standard'}}}})
    assert any('kserve.controller.deploymentMod' in error for error in conformance_errors('kserve-resources', values))


def test_overrides_merge_recursively_and_registry_moves_every_image():
    values = render({'kserve_image_registry': 'registry.internal:5000', 'kserve_release_overrides': {'kserve': {'controller': {'gateway': {
        'domain': 'models.example.com'}}}}})
    assert values['kserve']['controller']['gateway'] == {'domain': 'models.example.com', 'urlScheme': 'http'}
    images = [values['kserve'][part]['image'] for part in ('controller', 'agent', 'router', 'storage')]
    assert all(image.startswith('registry.internal:5000/kserve/') for image in images), images
    assert_conforms('kserve-resources', values)


def test_values_are_accepted_by_the_testbed_stand_in_chart():
    values = render({'kserve_deployment_mode': 'Knative'})
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump(values, handle)
    try:
        proc = subprocess.run([HELM, 'template', 'kserve', STAND_IN, '--namespace', 'kserve', '-f', handle.name], capture_output=True,
                              text=True, check=False)
    finally:
        os.unlink(handle.name)
    assert proc.returncode == 0, proc.stderr
    docs = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    deployment = next(doc for doc in docs if doc['kind'] == 'Deployment')
    assert 'docker.io/kserve/kserve-controller:v0.20.0' in [c['image'] for c in deployment['spec']['template']['spec']['containers']]


def test_inference_services_render_gpu_and_cpu_predictors_with_pinned_images():
    gpu = {'name': 'llm', 'namespace': 'serving', 'model_format': 'huggingface', 'storage_uri': 'hf://org/model', 'gpus': 2,
           'runtime_image': 'kserve/huggingfaceserver@sha256:' + 'a' * 64, 'min_replicas': 1, 'max_replicas': 3, 'scale_metric': 'concurrency',
           'scale_target': 8, 'shm_size': '2Gi'}
    cpu, llm = render({'kserve_inference_services': [CPU, gpu]}, fact='kserve_inference_service_manifests')
    assert cpu['metadata']['annotations']['serving.kserve.io/deploymentMode'] == 'Standard'
    assert cpu['metadata']['labels']['app.kubernetes.io/managed-by'] == 'mlops.platform.kserve'
    assert cpu['spec']['predictor']['model']['image'] == 'kserve/sklearnserver:v0.20.0'
    assert 'tolerations' not in cpu['spec']['predictor']
    predictor = llm['spec']['predictor']
    assert predictor['model']['resources']['limits']['nvidia.com/gpu'] == 2
    assert (predictor['minReplicas'], predictor['maxReplicas'], predictor['scaleMetric'], predictor['scaleTarget']) == (1, 3, 'concurrency', 8)
    assert any(t['key'] == 'nvidia.com/gpu' for t in predictor['tolerations'])
    assert predictor['model']['image'].endswith('a' * 64)


def test_scale_to_zero_and_canary_render_in_knative_mode():
    entry = dict(CPU, min_replicas=0, max_replicas=2, canary_traffic_percent=10)
    isvc = render({'kserve_deployment_mode': 'Serverless', 'kserve_inference_services': [entry]}, fact='kserve_inference_service_manifests')[0]
    assert isvc['metadata']['annotations']['serving.kserve.io/deploymentMode'] == 'Knative'
    assert (isvc['spec']['predictor']['minReplicas'], isvc['spec']['predictor']['canaryTrafficPercent']) == (0, 10)


@pytest.mark.parametrize('entry, extra, message', [
    (dict(CPU, min_replicas=0), {}, 'kserve_inference_services[0] (serving/fraud): min_replicas 0 (scale to zero) needs deployment mode Knative'),
    (dict(CPU, canary_traffic_percent=20), {}, 'kserve_inference_services[0] (serving/fraud): canary_traffic_percent needs deployment mode'),
    (dict(CPU, min_replicas=0, deployment_mode='RawDeployment'), {'kserve_deployment_mode': 'Knative'}, 'not RawDeployment'),
    (dict(CPU, runtime_image='kserve/sklearnserver:latest'), {}, 'runtime_image must be pinned'),
    (dict(CPU, runtime_image='kserve/sklearnserver'), {}, 'runtime_image must be pinned'),
    (dict(CPU, model_uri='models:/fraud/1'), {}, 'set storage_uri or model_uri, not both'),
    (dict({k: v for k, v in CPU.items() if k != 'storage_uri'}, model_uri='models:/fraud/1'), {}, 'model_uri needs kserve_mlflow_tracking_uri'),
])
def test_validation_names_the_variable(entry, extra, message):
    output = render_error(dict(extra, kserve_inference_services=[entry]))
    assert message in output, output[-3000:]


def test_per_service_knative_mode_allows_scale_to_zero():
    entry = dict(CPU, min_replicas=0, deployment_mode='Serverless')
    isvc = render({'kserve_inference_services': [entry]}, fact='kserve_inference_service_manifests')[0]
    assert isvc['metadata']['annotations']['serving.kserve.io/deploymentMode'] == 'Knative'


def test_duplicate_inference_services_and_unpinned_controller_are_rejected():
    assert 'each namespace/name must appear once' in render_error({'kserve_inference_services': [CPU, CPU]})
    assert 'must name a pinned tag or digest' in render_error({'kserve_image_tag': 'latest'})
    assert 'must name a pinned tag or digest' in render_error({'kserve_rbac_proxy_image': 'quay.io/brancz/kube-rbac-proxy'})


def test_missing_prerequisites_stop_the_role_before_any_change(ansible_env, k8s, tmp_path):
    """On the testbed there is no cert-manager and no Knative: the role must say so and create nothing."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([{
        'name': 'Prerequisites', 'hosts': 'localhost', 'gather_facts': False, 'connection': 'local',
        'module_defaults': {'group/kubernetes.core.k8s': {'kubeconfig': ansible_env['KUBECONFIG']},
                            'group/kubernetes.core.helm': {'kubeconfig': ansible_env['KUBECONFIG']}},
        'roles': [{'role': 'mlops.platform.kserve', 'vars': {
            'kserve_namespace': 'kserve-prereq-test', 'kserve_chart_ref': STAND_IN, 'kserve_crd_install': False,
            'kserve_deployment_mode': 'Knative', 'kserve_require_cert_manager': True}}],
    }]))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', str(playbook)],
                          capture_output=True, text=True, env=ansible_env, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert 'KServe cannot be installed, nothing was changed. Missing:' in output
    for missing in ('cert-manager CRD certificates.cert-manager.io', 'a ready cert-manager webhook Deployment',
                    'Knative Serving CRD services.serving.knative.dev', 'a Knative networking layer'):
        assert missing in output, missing
    names = [ns.metadata.name for ns in client.CoreV1Api(k8s).list_namespace().items]
    assert 'kserve-prereq-test' not in names
