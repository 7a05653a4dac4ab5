"""The docker-compose "fleet" profile, checked without Docker: the compose file, HAProxy's and
Prometheus' configs agree on every name and port, and the fleet's stampede configs load in
the real binary and serve /work/io through a real downstream."""

import os
import re
import shutil
import subprocess
import unittest

from harness import SOURCE, Server
from test_dashboards import promtool_check

FLEET = os.path.join(SOURCE, 'config', 'fleet')
REPLICAS = ['fleet-replica1', 'fleet-replica2', 'fleet-replica3']


def _read(*parts):
    with open(os.path.join(*parts)) as f:
        return f.read()


def _service_block(config, name):
    """One service's block of `docker-compose config` output."""
    start = config.index('\n  %s:\n' % name)
    block = config[start + 1:]
    end = re.search(r'\n  [a-z]', block)
    return block[:end.start()] if end else block


class FleetComposeTest(unittest.TestCase):
    @unittest.skipUnless(shutil.which('docker-compose'), 'docker-compose (Debian) is missing')
    def test_the_fleet_profile_has_a_downstream_three_replicas_haproxy_and_prometheus(self):
        out = subprocess.run(['docker-compose', '--profile', 'fleet', 'config'], cwd=SOURCE,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        for name in ['fleet-downstream', 'fleet-haproxy', 'fleet-prometheus'] + REPLICAS:
            block = _service_block(out.stdout, name)
            self.assertIn('- fleet', block, name + ' is in the fleet profile')
        for name in REPLICAS:
            block = _service_block(out.stdout, name)
            self.assertIn('/etc/stampede/fleet/replica.yaml', block)
            self.assertRegex(block, r'\n    mem_limit: [\'"]?192m')
            self.assertIn('\n    restart: on-failure', block)
        self.assertIn('/etc/stampede/fleet/downstream.yaml',
                      _service_block(out.stdout, 'fleet-downstream'))

    def test_haproxy_and_prometheus_name_the_compose_services(self):
        cfg = _read(FLEET, 'haproxy.cfg')
        servers = re.findall(r'^\s*server \S+ ([a-z0-9-]+):8080 ', cfg, re.M)
        self.assertEqual(servers, REPLICAS)
        self.assertIn('balance leastconn', cfg)
        self.assertIn('uri /healthz hdr Authorization "Bearer ${STAMPEDE_ADMIN_TOKEN}"', cfg)
        self.assertEqual(len(re.findall(r' check port 8081 ', cfg)), len(REPLICAS))
        self.assertIn('bind :8405', cfg)
        prom = _read(SOURCE, 'dashboards', 'prometheus-fleet.yml')
        targets = re.findall(r"'([a-z0-9-]+):(\d+)'", prom)
        self.assertEqual(sorted(targets), sorted(
            [('fleet-downstream', '8081')] + [(r, '8081') for r in REPLICAS] +
            [('fleet-haproxy', '8405')]))
        compose = _read(SOURCE, 'docker-compose.yml')
        self.assertIn('prometheus-fleet.yml', compose)
        self.assertIn('config/fleet/haproxy.cfg', compose)

    @unittest.skipUnless(shutil.which('haproxy'), 'haproxy (Debian) is missing')
    def test_haproxy_accepts_the_fleet_config(self):
        out = subprocess.run(['haproxy', '-c', '-f', os.path.join(FLEET, 'haproxy.cfg')],
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, STAMPEDE_ADMIN_TOKEN='a-token'))
        # The replicas' names resolve only inside the compose network: a warning here.
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    @unittest.skipUnless(shutil.which('promtool'), 'promtool (Debian: prometheus) is missing')
    def test_promtool_accepts_the_fleet_prometheus_config(self):
        self.assertEqual(promtool_check(os.path.join(SOURCE, 'dashboards',
                                                     'prometheus-fleet.yml')), '')

    def test_a_replica_with_the_fleet_config_serves_through_the_fleet_downstream(self):
        with Server(_read(FLEET, 'downstream.yaml')) as downstream:
            replica_cfg = _read(FLEET, 'replica.yaml').replace(
                'http://fleet-downstream:8080', 'http://127.0.0.1:%d' % downstream.main_port)
            self.assertIn('127.0.0.1:%d' % downstream.main_port, replica_cfg)
            with Server(replica_cfg) as replica:
                r = replica.get('/work/io?ms=5')
                self.assertEqual(r.status, 200, r.body)
                calls = replica.metrics().value('stampede_downstream_calls_total', outcome='ok')
                self.assertEqual(calls, 1)
            served = downstream.metrics().value('stampede_http_requests_total', handler='io',
                                                code='200')
            self.assertEqual(served, 1)


if __name__ == '__main__':
    unittest.main()
