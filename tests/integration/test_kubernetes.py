"""deploy/kubernetes, checked offline (no cluster runs here): the base and its overlays render
with `kubectl kustomize`, every object is valid against the Kubernetes API's schemas
(kubernetes-models, tests/kubernetes/validate.js), the pods run the same config files and
memory limit as compose and scripts/serve, and a server reloads its config when the kubelet
swaps a ConfigMap's files in place."""

import json
import os
import shutil
import subprocess
import time
import unittest

import yaml

from harness import Server, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
KUBE = os.path.join(ROOT, 'deploy', 'kubernetes')
CHECK = os.path.join(ROOT, 'tests', 'kubernetes')
VARIANTS = ['base', 'overlays/servicemonitor', 'overlays/wrong-port-readiness']


def render(variant):
    """The objects `kubectl kustomize` makes of `variant` (its ConfigMap reads config/, outside
    the folder: hence the restrictor)."""
    kubectl = shutil.which('kubectl')
    if not kubectl:
        raise AssertionError('kubectl is missing: the manifests cannot be rendered')
    done = subprocess.run([kubectl, 'kustomize', '--load-restrictor', 'LoadRestrictionsNone',
                           os.path.join(KUBE, variant)], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise AssertionError('kubectl kustomize %s failed:\n%s' % (variant, done.stderr))
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def find(objects, kind, name):
    return next(o for o in objects if o['kind'] == kind and o['metadata']['name'] == name)


def mounted_key(deployment, path):
    """The ConfigMap key the container sees at `path`, through its volume mounts."""
    spec = deployment['spec']['template']['spec']
    for m in spec['containers'][0]['volumeMounts']:
        prefix = m['mountPath'].rstrip('/') + '/'
        if not path.startswith(prefix):
            continue
        volume = next(v for v in spec['volumes'] if v['name'] == m['name'])
        for item in volume['configMap'].get('items', []):
            if item['path'] == path[len(prefix):]:
                return volume['configMap']['name'], item['key']
    raise AssertionError('nothing mounted at ' + path)


def config_arg(container):
    args = container['args']
    return args[args.index('--config') + 1]


def mebibytes(quantity):
    """192Mi, 192m (compose: MiB) or 192 as MiB."""
    q = str(quantity)
    for suffix in ('Mi', 'm', 'M'):
        if q.endswith(suffix):
            return int(q[:-len(suffix)])
    return int(q)


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ROOT, 'docker-compose.yml')) as f:
            cls.compose = yaml.safe_load(f)['services']
        with open(os.path.join(ROOT, 'config', 'stampede.yaml')) as f:
            cls.model = yaml.safe_load(f)
        cls.base = render('base')

    def test_every_variant_renders_and_validates_against_the_api_schemas(self):
        node = shutil.which('node')
        self.assertTrue(node, 'node is missing (scripts/setup installs nodejs)')
        self.assertTrue(os.path.isdir(os.path.join(CHECK, 'node_modules', 'kubernetes-models')),
                        'kubernetes-models is missing (scripts/test runs npm ci in %s)' % CHECK)
        for variant in VARIANTS:
            objects = render(variant)
            done = subprocess.run([node, os.path.join(CHECK, 'validate.js')],
                                  input=json.dumps(objects), capture_output=True, text=True,
                                  timeout=60)
            self.assertEqual(done.returncode, 0, '%s:\n%s%s' % (variant, done.stdout,
                                                                done.stderr))
            valid = [l for l in done.stdout.splitlines() if l.startswith('valid ')]
            self.assertEqual(len(valid), len(objects), done.stdout)
        kinds = {o['kind'] for o in render('overlays/servicemonitor')}
        self.assertIn('ServiceMonitor', kinds)
        self.assertNotIn('ServiceMonitor', {o['kind'] for o in self.base})

    def test_the_validator_refuses_what_the_api_would(self):
        bad = [{'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'x'},
                'spec': {'replicas': 'three', 'selector': {}, 'template': {}}},
               {'apiVersion': 'example.com/v1', 'kind': 'Nothing', 'metadata': {'name': 'y'}}]
        done = subprocess.run(['node', os.path.join(CHECK, 'validate.js')],
                              input=json.dumps(bad), capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 1)
        self.assertIn('INVALID apps/v1 Deployment x', done.stdout)
        self.assertIn('NO SCHEMA example.com/v1 Nothing y', done.stdout)

    def test_the_pods_run_the_files_of_config_as_compose_does(self):
        cm = find(self.base, 'ConfigMap', 'stampede-config')
        for key, path in (('stampede.yaml', 'config/stampede.yaml'),
                          ('replica.yaml', 'config/fleet/replica.yaml'),
                          ('downstream.yaml', 'config/fleet/downstream.yaml')):
            with open(os.path.join(ROOT, path)) as f:
                self.assertEqual(cm['data'][key], f.read(), key)
        # The same file at the same path as compose's services (compose mounts config/ at
        # /etc/stampede).
        for name, service, key in (('fleet-replica', 'fleet-replica1', 'replica.yaml'),
                                   ('fleet-downstream', 'fleet-downstream', 'downstream.yaml')):
            d = find(self.base, 'Deployment', name)
            path = config_arg(d['spec']['template']['spec']['containers'][0])
            compose_cmd = self.compose[service]['command']
            self.assertEqual(path, compose_cmd[compose_cmd.index('--config') + 1], name)
            self.assertEqual(mounted_key(d, path), ('stampede-config', key), name)
        model = find(self.base, 'Deployment', 'stampede')
        path = config_arg(model['spec']['template']['spec']['containers'][0])
        self.assertEqual(path, '/etc/stampede/stampede.yaml')  # the image's CMD, compose's
        self.assertEqual(mounted_key(model, path), ('stampede-config', 'stampede.yaml'))
        # No hash suffix: one name, updated in place (a live reload, not a rollout).
        self.assertEqual(cm['metadata']['name'], 'stampede-config')

    def test_the_memory_limit_is_the_models_as_in_compose_and_scripts_serve(self):
        limit = self.model['supervisor']['memory_limit_mb']  # what scripts/serve applies
        self.assertEqual(limit, 192)
        for name, service in (('stampede', 'stampede'), ('fleet-replica', 'fleet-replica1')):
            container = find(self.base, 'Deployment', name)['spec']['template']['spec'][
                'containers'][0]
            self.assertEqual(mebibytes(container['resources']['limits']['memory']), limit, name)
            self.assertEqual(mebibytes(self.compose[service]['mem_limit']), limit, service)
            # The kubelet restarts it (OOMKilled, then CrashLoopBackOff): no supervisor inside.
            self.assertEqual(container['command'], ['/usr/local/bin/stampede'], name)

    def test_readiness_is_on_the_admin_port_and_the_overlay_moves_it(self):
        secret = find(self.base, 'Secret', 'stampede-admin-token')
        token = secret.get('stringData', {}).get('STAMPEDE_ADMIN_TOKEN')
        if token is None:
            import base64
            token = base64.b64decode(secret['data']['STAMPEDE_ADMIN_TOKEN']).decode()
        self.assertEqual(token, self.compose['stampede']['environment']['STAMPEDE_ADMIN_TOKEN'])
        for name in ('stampede', 'fleet-replica', 'fleet-downstream'):
            probe = find(self.base, 'Deployment', name)['spec']['template']['spec'][
                'containers'][0]['readinessProbe']['httpGet']
            self.assertEqual((probe['path'], probe['port']), ('/healthz', 'admin'), name)
            self.assertIn({'name': 'Authorization', 'value': 'Bearer ' + token},
                          probe['httpHeaders'], name)
        pdb = find(self.base, 'PodDisruptionBudget', 'fleet-replica')
        self.assertEqual(pdb['spec']['minAvailable'], 2)
        wrong = render('overlays/wrong-port-readiness')
        probe = find(wrong, 'Deployment', 'fleet-replica')['spec']['template']['spec'][
            'containers'][0]['readinessProbe']['httpGet']
        self.assertEqual(probe['port'], 'main')
        # Only the replicas' probe moves.
        self.assertEqual(find(wrong, 'Deployment', 'stampede'),
                         find(self.base, 'Deployment', 'stampede'))

    def test_the_job_runs_clients_with_deadlines_and_a_retry_policy_at_the_fleet(self):
        job = find(self.base, 'Job', 'stampede-openloop')
        script = ' '.join(job['spec']['template']['spec']['containers'][0]['args'])
        for flag in ('stampede-openloop', '--allow-network', '$FLEET_SERVICE_HOST:8080',
                     '--retry budget', '--timeout 1000'):
            self.assertIn(flag, script)
        find(self.base, 'Service', 'fleet')
        # The image has the binary the Job runs.
        with open(os.path.join(ROOT, 'Dockerfile')) as f:
            self.assertIn('/usr/local/bin/stampede-openloop', f.read())

    def test_a_configmap_update_swapped_in_by_the_kubelet_reloads_the_server(self):
        # The kubelet's atomic writer: the files in a timestamped folder, ..data a symlink to
        # it, each top-level path a symlink through ..data; an update writes a new folder and
        # renames a new ..data over the old one.
        s = Server('')
        root = os.path.join(s.dir, 'configmap')
        os.makedirs(root)

        def publish(text, stamp):
            folder = os.path.join(root, '..' + stamp)
            os.makedirs(os.path.join(folder, 'fleet'))
            with open(os.path.join(folder, 'fleet', 'replica.yaml'), 'w') as f:
                f.write(text)
            old = os.path.realpath(os.path.join(root, '..data')) \
                if os.path.islink(os.path.join(root, '..data')) else None
            os.symlink('..' + stamp, os.path.join(root, '..data_tmp'))
            os.replace(os.path.join(root, '..data_tmp'), os.path.join(root, '..data'))
            if not os.path.islink(os.path.join(root, 'fleet')):
                os.symlink(os.path.join('..data', 'fleet'), os.path.join(root, 'fleet'))
            if old:
                shutil.rmtree(old)

        publish('mode: coroutine\nreload:\n  poll_ms: 100\n', '2026_12_08_01')
        s.config_path = os.path.join(root, 'fleet', 'replica.yaml')
        with s:
            self.assertEqual(s.config()['mode'], 'coroutine')
            time.sleep(0.05)
            publish('mode: bounded\nreload:\n  poll_ms: 100\n', '2026_12_08_02')
            self.assertTrue(wait_for(lambda: s.config()['mode'] == 'bounded'), s.log[-5:])
            self.assertEqual(s.get('/work/io?ms=1').headers['x-stampede-mode'], 'bounded')
            self.assertGreaterEqual(s.metrics().value('stampede_config_reloads_total',
                                                      result='ok'), 1)


if __name__ == '__main__':
    unittest.main()
