"""The lesson's model: config/stampede.yaml as the server itself reads it.

Every runner (the demo and its scenarios, scripts/serve, compose) starts from that one file.
The values come from the binary (`stampede --print-config`), so Python parses no YAML and can
never read the model differently from the server. A scenario's server runs a config written
from the model with the scenario's overrides, and the report names each override."""

import json
import os
import subprocess

from .common import ROOT

MODEL_PATH = os.path.join(ROOT, 'config', 'stampede.yaml')

# Keys a scenario's config never copies from the model: the driver picks the ports, and a
# masked secret cannot be copied.
_NOT_COPIED = ('main.listen', 'admin.listen', 'admin.token')


def _flatten(tree, prefix=''):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, prefix + key + '.'))
        else:
            out[prefix + key] = value
    return out


def _yaml_scalar(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a YAML string


class Model:
    """The effective config of `path` (the shipped model by default), key by key, dotted."""

    def __init__(self, binary, path=MODEL_PATH, args=()):
        self.path = os.path.abspath(path)
        done = subprocess.run([binary, '--config', self.path, '--print-config'] + list(args),
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise ValueError((done.stderr or done.stdout).strip() or
                             'stampede --print-config failed (%d)' % done.returncode)
        tree = json.loads(done.stdout)
        self.sources = tree.pop('sources', {})
        self.values = _flatten(tree)
        self._overridden = {}  # why -> {key: [values]}, in the order first written

    def __getitem__(self, key):
        return self.values[key]

    def memory_limit_bytes(self):
        """supervisor.memory_limit_mb in bytes; None for no limit."""
        mb = self['supervisor.memory_limit_mb']
        return mb * 2**20 if mb else None

    def restart_backoff(self):
        """(first, most) seconds for a supervisor; None restarts at once."""
        first = self['supervisor.restart_backoff_ms'] / 1000.0
        return (first, max(first, self['supervisor.restart_backoff_max_ms'] / 1000.0)) \
            if first > 0 else None

    def config_text(self, overrides=None, why=''):
        """A config file: the model with `overrides` ({dotted key: value}), which are named in
        its header with `why`. Unknown keys are an error, as they are to the server."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.values))
        if unknown:
            raise KeyError('not config keys: %s' % ', '.join(unknown))
        merged = dict(self.values, **overrides)
        self.note(why or 'the scenario', overrides)
        lines = ['# Written by the load-test driver from %s' % self.path]
        if overrides:
            lines.append('# overridden%s: %s' % (' (%s)' % why if why else '', describe(overrides)))
        section = None
        for key, value in merged.items():
            if key in _NOT_COPIED and key not in overrides:
                continue
            head, dot, name = key.partition('.')
            if not dot:
                lines.append('%s: %s' % (key, _yaml_scalar(value)))
                section = None
                continue
            if head != section:
                lines.append('%s:' % head)
                section = head
            lines.append('  %s: %s' % (name, _yaml_scalar(value)))
        return '\n'.join(lines) + '\n'


    def note(self, why, overrides):
        """Records overrides ({key: value}) the report lists under `why`: a config's, or one of
        the driver's own."""
        keys = self._overridden.setdefault(why, {})
        for key, value in overrides.items():
            if value not in keys.setdefault(key, []):
                keys[key].append(value)

    @property
    def overridden(self):
        """[(why, 'key=value, key=a|b')]: what every config written overrode, by reason."""
        return [(why, ', '.join('%s=%s' % (k, '|'.join(str(v) for v in vals))
                                for k, vals in sorted(keys.items())) or 'nothing')
                for why, keys in self._overridden.items()]

    def summary(self):
        """One line: the model's figures that the lesson turns on."""
        limit = self['supervisor.memory_limit_mb']
        return ('%s: a downstream of %d slots, %d KiB held per request, bounded %d workers + a '
                'queue of %d (%d ms), %s' % (
                    os.path.relpath(self.path, ROOT), self['downstream.capacity'],
                    self['work.request_kb'], self['bounded.workers'],
                    self['bounded.queue_capacity'], self['bounded.queue_timeout_ms'],
                    '%d MiB memory limit' % limit if limit else 'no memory limit'))


def describe(overrides):
    """'bounded.workers=2, mode=bounded', in key order."""
    return ', '.join('%s=%s' % (k, overrides[k]) for k in sorted(overrides)) or 'nothing'
