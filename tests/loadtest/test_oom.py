"""The driver's out-of-memory path: a server in a small memory cgroup is OOM-killed by the
kernel, restarted like a supervisor would, and the requests lost with it are counted."""

import json
import os
import re
import subprocess
import tempfile
import unittest

from stampede_load import lab

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
BINARY = os.environ.get('STAMPEDE_BIN', os.path.join(ROOT, 'build', 'stampede'))


LIMIT = 64 * 2**20


def cgroup_unavailable():
    probe = lab.MemoryCgroup(LIMIT, 'stampede-probe-%d' % os.getpid())
    probe.close()
    return None if probe.active else probe.why


class OomTest(unittest.TestCase):
    def test_oom_kill_is_contained_restarted_and_counted(self):
        why = cgroup_unavailable()
        if why:
            self.skipTest('no memory cgroup can be made here: ' + why)
        out = tempfile.mkdtemp(prefix='stampede-oom-')
        # 400 clients × 1 MiB working sets cannot fit in 64 MiB.
        run = subprocess.run(
            ['/usr/bin/python3', os.path.join(ROOT, 'loadtest', 'run'), 'spike', '--quick',
             '--endpoints', 'io', '--modes', 'thread_per_request,bounded', '--memory-limit',
             '64M', '--request-kb', '1024', '--out', out, '--binary', BINARY],
            capture_output=True, text=True, timeout=240)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        with open(os.path.join(out, 'summary.json')) as f:
            rows = {r['mode']: r for r in json.load(f)['scenarios']['spike']}
        tpr, bounded = rows['thread_per_request'], rows['bounded']
        self.assertGreaterEqual(tpr['oom_kills'], 1, tpr['deaths'])
        self.assertTrue(all(d['signal'] == 9 for d in tpr['deaths']), tpr['deaths'])
        self.assertGreater(tpr['lost_in_flight'], 0)
        self.assertIsNotNone(tpr['recovery_s'])
        self.assertLess(tpr['recovery_s'], 10)
        self.assertIn('killed by the OOM killer', tpr['verdict'])
        self.assertEqual(bounded['oom_kills'], 0)
        self.assertEqual(bounded['deaths'], [])
        self.assertLess(bounded['rss_peak'], LIMIT)
        self.assertIn('64 MiB memory limit', tpr['memory_limit_note'])
        # The driver removes the cgroups it made (named in the report; other drivers on the
        # machine may have cgroups of their own meanwhile).
        for r in rows.values():
            made = re.search(r'(/sys/fs/cgroup/\S+?)\)', r['memory_limit_note'])
            if made:  # (not as root, a systemd scope, which ends with its process)
                self.assertFalse(os.path.exists(made.group(1)), made.group(1))

    def test_memory_limit_sizes_parse(self):
        self.assertIsNone(lab.parse_size('none'))
        self.assertEqual(lab.parse_size('192M'), 192 * 2**20)
        self.assertEqual(lab.parse_size('1g'), 2**30)
        with self.assertRaises(ValueError):
            lab.parse_size('lots')


if __name__ == '__main__':
    unittest.main()
