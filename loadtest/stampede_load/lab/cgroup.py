"""Memory cgroups (v2 or v1, or a systemd scope when not root): a limit the kernel's OOM
killer enforces on one server only."""

import os
import shutil
import subprocess
import time


def _own_cgroup(controller):
    """This process's cgroup path in the v1 hierarchy of `controller` ('' for v2)."""
    try:
        with open('/proc/self/cgroup') as f:
            for line in f:
                _, names, path = line.rstrip('\n').split(':', 2)
                if controller in names.split(',') or (controller == '' and names == ''):
                    return path
    except OSError:
        pass
    return None


def own_memory_limit():
    """The memory limit of the cgroup this process is in (a container's), in bytes; None if
    there is none or it cannot be read."""
    own = _own_cgroup('')
    candidates = []
    if own is not None:
        candidates.append(os.path.join('/sys/fs/cgroup', own.lstrip('/'), 'memory.max'))
    own_v1 = _own_cgroup('memory')
    if own_v1 is not None:
        candidates.append(os.path.join('/sys/fs/cgroup/memory', own_v1.lstrip('/'),
                                       'memory.limit_in_bytes'))
    for path in candidates:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < 2**62:  # v1 says "none" with about 2**63
            return int(text)
    return None


class MemoryCgroup:
    """A memory cgroup made for one server, so the kernel's OOM killer ends that server when it
    passes `limit` bytes, never anything else on the machine. cgroup v2 (`memory.max`) or v1
    (`memory.limit_in_bytes`), made beside this process's own cgroup and removed by close();
    when not root, `systemd-run --user --scope -p MemoryMax=` instead. If none can be had,
    `why` says why and the server runs without a limit."""

    def __init__(self, limit, name):
        self.limit = limit
        self.name = name
        self.path = None       # the cgroup folder we made
        self.version = None    # 'v2', 'v1' or 'systemd-run'
        self.wrapper = []      # command prefix (systemd-run) when not made by hand
        self.why = None
        errors = []
        if os.geteuid() == 0:
            for make in (self._make_v2, self._make_v1):
                try:
                    if make():
                        return
                except OSError as e:
                    errors.append('%s: %s' % (make.__name__[6:], e))
        elif shutil.which('systemd-run'):
            probe = subprocess.run(['systemd-run', '--user', '--scope', '--quiet', '-p',
                                    'MemoryMax=%d' % limit, 'true'], capture_output=True,
                                   text=True, timeout=20)
            if probe.returncode == 0:
                self.version = 'systemd-run'
                self.wrapper = ['systemd-run', '--user', '--scope', '--quiet', '-p',
                                'MemoryMax=%d' % limit, '-p', 'MemorySwapMax=0', '--']
                return
            errors.append('systemd-run --user --scope: ' + (probe.stderr.strip() or 'failed'))
        else:
            errors.append('not root, and no systemd-run for a user scope')
        self.why = '; '.join(errors) or 'no writable memory cgroup hierarchy'

    def _make_v2(self):
        root = '/sys/fs/cgroup'
        if not os.path.exists(os.path.join(root, 'cgroup.controllers')):
            return False
        with open(os.path.join(root, 'cgroup.controllers')) as f:
            if 'memory' not in f.read().split():
                return False
        own = _own_cgroup('') or '/'
        # Beside our own cgroup (a process may not sit in a cgroup whose children have
        # controllers), falling back to the root.
        for parent in {os.path.dirname(own.rstrip('/')) or '/', '/'}:
            base = os.path.join(root, parent.lstrip('/'))
            try:
                with open(os.path.join(base, 'cgroup.subtree_control'), 'w') as f:
                    f.write('+memory')
            except OSError:
                pass
            path = os.path.join(base, self.name)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            if not os.path.exists(os.path.join(path, 'memory.max')):
                os.rmdir(path)
                continue
            with open(os.path.join(path, 'memory.max'), 'w') as f:
                f.write(str(self.limit))
            if os.path.exists(os.path.join(path, 'memory.swap.max')):
                with open(os.path.join(path, 'memory.swap.max'), 'w') as f:
                    f.write('0')
            self.path, self.version = path, 'v2'
            return True
        return False

    def _make_v1(self):
        root = '/sys/fs/cgroup/memory'
        if not os.path.exists(os.path.join(root, 'memory.limit_in_bytes')):
            return False
        own = _own_cgroup('memory') or '/'
        for parent in (own, '/'):
            path = os.path.join(root, parent.lstrip('/'), self.name)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            except OSError:
                continue
            with open(os.path.join(path, 'memory.limit_in_bytes'), 'w') as f:
                f.write(str(self.limit))
            memsw = os.path.join(path, 'memory.memsw.limit_in_bytes')
            if os.path.exists(memsw):  # no swapping our way out of the limit
                try:
                    with open(memsw, 'w') as f:
                        f.write(str(self.limit))
                except OSError:
                    pass
            self.path, self.version = path, 'v1'
            return True
        return False

    @property
    def active(self):
        return self.version is not None

    def describe(self):
        if not self.active:
            return 'no memory limit (%s)' % self.why
        where = self.path if self.path else 'a systemd user scope'
        return '%.0f MiB memory limit (cgroup %s, %s)' % (self.limit / 2**20, self.version, where)

    def preexec(self):
        """For Popen: puts the child into the cgroup before it runs the server."""
        if not self.path:
            return None
        procs = os.path.join(self.path, 'cgroup.procs')

        def enter():
            with open(procs, 'w') as f:
                f.write(str(os.getpid()))
        return enter

    def oom_kills(self):
        """The kernel's count of OOM kills in this cgroup (None where it cannot be read)."""
        name = {'v2': 'memory.events', 'v1': 'memory.oom_control'}.get(self.version)
        if not name:
            return None
        try:
            with open(os.path.join(self.path, name)) as f:
                for line in f:
                    key, _, value = line.partition(' ')
                    if key == 'oom_kill':
                        return int(value)
        except OSError:
            return None
        return None

    def close(self):
        if self.path:
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)  # the killed process is still being torn down
            self.path = None
