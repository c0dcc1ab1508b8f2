"""The mlops.platform.mlflow_model_uri lookup (and the kserve role's model_uri) against a real MLflow server.

MLflow 3.15.1, the version the platform deploys, runs from its own virtualenv at
``$MLOPS_TESTBED_CACHE/mlflow-venv-3.15.1`` (the bootstrap creates it; ``MLOPS_MLFLOW_VENV`` overrides the
path) with a SQLite backend, the ``basic-auth`` app and a local artifact store behind the server's artifact
proxy, on 127.0.0.1. A real client logs a pyfunc model, registers it and sets an alias; the lookup then
resolves the registry references over the REST API. Without the virtualenv the tests fail and say how to
create it; they never skip.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request

import pytest
import yaml

from upstream import ROOT, render_role_values

MLFLOW_VERSION = '3.15.1'
CACHE = os.environ.get('MLOPS_TESTBED_CACHE', os.path.expanduser('~/.cache/mlops-testbed'))
VENV = os.environ.get('MLOPS_MLFLOW_VENV', os.path.join(CACHE, 'mlflow-venv-%s' % MLFLOW_VERSION))
START_TIMEOUT = 900  # seconds; importing MLflow on a loaded two-core machine takes minutes
ADMIN = 'admin'
DESTINATION = 'pvc://mlflow-artifacts'

REGISTER = textwrap.dedent('''
    import json, sys
    import mlflow
    from mlflow import MlflowClient

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("kserve-contract")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=["mlflow==%s"],
                                       registered_model_name="fraud-detector")
    client = MlflowClient()
    version = max(int(v.version) for v in client.search_model_versions("name='fraud-detector'"))
    client.set_registered_model_alias("fraud-detector", "champion", str(version))
    print(json.dumps({"version": str(version), "model_id": info.model_id}))
''' % MLFLOW_VERSION)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_healthy(url, proc, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, encoding='utf-8', errors='replace') as handle:
                pytest.fail('mlflow server exited with %s:\n%s' % (proc.returncode, handle.read()[-3000:]))
        try:
            with urllib.request.urlopen(url + '/health', timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    pytest.fail('mlflow server did not answer %s/health within %ss' % (url, START_TIMEOUT))


@pytest.fixture(scope='module')
def mlflow_server():
    """A running MLflow server with basic auth and a registered, aliased model."""
    mlflow_bin = os.path.join(VENV, 'bin', 'mlflow')
    if not os.access(mlflow_bin, os.X_OK):
        pytest.fail('MLflow %s virtualenv missing: %s does not exist. Create it with `python3 -m venv %s && %s/bin/pip install '
                    'mlflow==%s` (scripts/bootstrap.sh does this), or point MLOPS_MLFLOW_VENV at one.'
                    % (MLFLOW_VERSION, mlflow_bin, VENV, VENV, MLFLOW_VERSION))
    with tempfile.TemporaryDirectory(prefix='mlflow-contract-') as tmp:
        password = secrets.token_urlsafe(18)
        artifacts = os.path.join(tmp, 'artifacts')
        auth_ini = os.path.join(tmp, 'auth.ini')
        with open(auth_ini, 'w', encoding='utf-8') as handle:
            handle.write('[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///%s/auth.db\nadmin_username = %s\n'
                         'admin_password = %s\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n'
                         % (tmp, ADMIN, password))
        port = free_port()
        url = 'http://127.0.0.1:%d' % port
        env = dict(os.environ, MLFLOW_AUTH_CONFIG_PATH=auth_ini, MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))
        log_path = os.path.join(tmp, 'server.log')
        with open(log_path, 'w', encoding='utf-8') as log:
            proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [mlflow_bin, 'server', '--host', '127.0.0.1', '--port', str(port), '--workers', '1',
                 '--backend-store-uri', 'sqlite:///%s/mlflow.db' % tmp, '--artifacts-destination', artifacts,
                 '--serve-artifacts', '--app-name', 'basic-auth'],
                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(url, proc, log_path)
            client_env = dict(os.environ, MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=password)
            reg = subprocess.run([os.path.join(VENV, 'bin', 'python'), '-c', REGISTER, url], capture_output=True, text=True,
                                 env=client_env, cwd=tmp, timeout=START_TIMEOUT, check=False)
            assert reg.returncode == 0, 'registering the model failed:\n%s\n%s' % (reg.stdout[-2000:], reg.stderr[-3000:])
            model = json.loads(reg.stdout.strip().splitlines()[-1])
            yield {'url': url, 'password': password, 'artifacts': artifacts, 'version': model['version'], 'model_id': model['model_id']}
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def run_lookups(terms, **options):
    """Evaluate the lookup for each term in one ansible-playbook run: (returncode, results or None, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'out.json')
        varsfile = os.path.join(tmp, 'vars.json')
        with open(varsfile, 'w', encoding='utf-8') as handle:
            json.dump({'terms': terms, 'opts': options, 'out': out}, handle)
        playbook = os.path.join(tmp, 'lookup.yml')
        with open(playbook, 'w', encoding='utf-8') as handle:
            yaml.safe_dump([{'name': 'Lookup', 'hosts': 'localhost', 'gather_facts': False, 'connection': 'local', 'tasks': [
                {'name': 'Resolve', 'ansible.builtin.set_fact': {
                    'resolved': "{{ query('mlops.platform.mlflow_model_uri', *terms, **opts) }}"}},
                {'name': 'Write', 'ansible.builtin.copy': {'content': '{{ resolved | to_json }}', 'dest': '{{ out }}', 'mode': '0600'}},
            ]}], handle)
        venv_bin = os.path.dirname(sys.executable)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'), ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                   ANSIBLE_NOCOLOR='1', PATH=os.pathsep.join([venv_bin, os.environ.get('PATH', '')]))
        for name in ('MLFLOW_TRACKING_URI', 'MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD', 'MLFLOW_TRACKING_TOKEN'):
            env.pop(name, None)
        proc = subprocess.run([os.path.join(venv_bin, 'ansible-playbook'), '-i', 'localhost,', playbook, '-e', '@' + varsfile],
                              capture_output=True, text=True, env=env, check=False)
        results = None
        if proc.returncode == 0:
            with open(out, encoding='utf-8') as handle:
                results = json.load(handle)
        return proc.returncode, results, proc.stdout + proc.stderr


def auth(server, **extra):
    return dict(tracking_uri=server['url'], username=ADMIN, password=server['password'], **extra)


def test_version_and_alias_resolve_to_the_model_directory_with_a_trailing_slash(mlflow_server):
    server = mlflow_server
    rc, results, output = run_lookups(['models:/fraud-detector/%s' % server['version'], 'models:/fraud-detector@champion'],
                                      **auth(server, artifacts_destination=DESTINATION))
    assert rc == 0, output[-3000:]
    by_version, by_alias = results
    assert by_version == by_alias
    assert by_version.startswith(DESTINATION + '/') and by_version.endswith('/') and not by_version.endswith('//')
    # The mapped URI names the real model directory in the store behind the server's proxy.
    relative = by_version[len(DESTINATION) + 1:]
    assert server['model_id'] in relative
    assert os.path.isfile(os.path.join(server['artifacts'], relative, 'MLmodel')), relative


def test_details_name_the_registry_facts(mlflow_server):
    server = mlflow_server
    rc, results, output = run_lookups(['models:/fraud-detector@champion'], **auth(server, artifacts_destination=DESTINATION, details=True))
    assert rc == 0, output[-3000:]
    details = results[0]
    assert details['version'] == server['version'] and details['alias'] == 'champion' and details['status'] == 'READY'
    assert details['source'] == 'models:/%s' % server['model_id']  # MLflow 3: the source is a logged-model reference
    assert details['download_uri'].startswith('mlflow-artifacts:/')
    assert server['password'] not in json.dumps(details)


def test_proxied_location_without_destination_is_refused(mlflow_server):
    rc, _results, output = run_lookups(['models:/fraud-detector/%s' % mlflow_server['version']], **auth(mlflow_server))
    assert rc != 0
    assert 'artifact proxy' in output and 'artifacts_destination' in output


@pytest.mark.parametrize('credentials', [{}, {'username': ADMIN, 'password': 'wrong-password-123'}])
def test_authentication_is_required_and_secrets_stay_out_of_errors(mlflow_server, credentials):
    rc, _results, output = run_lookups(['models:/fraud-detector/1'], tracking_uri=mlflow_server['url'], **credentials)
    assert rc != 0
    assert 'refused the request' in output and 'HTTP 401' in output, output[-2000:]
    assert 'wrong-password-123' not in output and mlflow_server['password'] not in output


def test_missing_version_and_alias_are_named(mlflow_server):
    rc, _results, output = run_lookups(['models:/fraud-detector/99'], **auth(mlflow_server, artifacts_destination=DESTINATION))
    assert rc != 0 and "version 99 of registered model 'fraud-detector' not found" in output, output[-2000:]
    rc, _results, output = run_lookups(['models:/fraud-detector@nope'], **auth(mlflow_server, artifacts_destination=DESTINATION))
    assert rc != 0 and "alias 'nope' of registered model 'fraud-detector' not found" in output, output[-2000:]


def test_kserve_role_renders_the_resolved_uri_into_the_inference_service(mlflow_server):
    server = mlflow_server
    manifests = render_role_values('kserve', {
        'kserve_mlflow_tracking_uri': server['url'], 'kserve_mlflow_username': ADMIN, 'kserve_mlflow_password': server['password'],
        'kserve_mlflow_artifacts_destination': DESTINATION,
        'kserve_inference_services': [{'name': 'fraud', 'namespace': 'serving', 'model_format': 'mlflow',
                                       'model_uri': 'models:/fraud-detector@champion', 'runtime_image': 'kserve/mlserver:1.7.1'}],
    }, fact='kserve_inference_service_manifests')
    uri = manifests[0]['spec']['predictor']['model']['storageUri']
    assert uri.startswith(DESTINATION + '/') and uri.endswith('/artifacts/')
    assert manifests[0]['spec']['predictor']['model']['modelFormat'] == {'name': 'mlflow'}
