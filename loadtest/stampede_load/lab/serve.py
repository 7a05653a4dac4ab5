"""scripts/serve's supervisor: runs stampede as production would.

  python3 -m stampede_load.lab.serve [--memory-limit SIZE|none] [--config FILE] [--binary PATH] [-- ARGS...]

The server runs inside a memory cgroup (v2 or v1; default supervisor.memory_limit_mb of the
config), so an unbounded mode under a spike is OOM-killed as a container would be. After a
death it is restarted with the config's crash-loop back-off, on the same ports, in the same
cgroup: the kernel's count of OOM kills there is the server's stampede_oom_kills_total. Each
death is one line on stderr. Ctrl-C (or SIGTERM) stops the server (it drains), then removes
the cgroup; a second Ctrl-C kills it at once. Already inside a memory limit no larger than the
one asked for (a container's), it runs there instead of making one."""

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

from .cgroup import MemoryCgroup, own_memory_limit
from .common import ROOT, parse_size
from .model import MODEL_PATH, Model

# A run that lasted this long was not a crash loop: the next death starts the back-off again.
STABLE_S = 30


def _say(text):
    sys.stderr.write('serve: %s\n' % text)
    sys.stderr.flush()


class Served:
    """The server process, its output echoed line by line, its bound addresses learnt from
    its "listening" line so a restart takes the same ports."""

    def __init__(self, cmd, cgroup):
        self.cmd = cmd
        self.cgroup = cgroup
        self.listen = None  # (main, admin) once known
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1, start_new_session=True,
            preexec_fn=self.cgroup.preexec() if self.cgroup else None)
        self.started = time.monotonic()
        self.pump = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self.pump.start()

    def _pump(self, proc):
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            m = re.search(r'listening main=(\S+) admin=(\S+)', line)
            if m:
                self.listen = (m.group(1), m.group(2))

    def restart(self):
        """Starts the server again on the ports it had (port 0 picked them the first time):
        the addresses it logged replace any given."""
        if self.listen:
            cmd, skip = [], False
            for arg in self.cmd:
                if skip:
                    skip = False
                elif arg in ('--listen', '--admin-listen'):
                    skip = True
                elif not arg.startswith(('--listen=', '--admin-listen=')):
                    cmd.append(arg)
            self.cmd = cmd + ['--listen', self.listen[0], '--admin-listen', self.listen[1]]
        self.start()


def _ordinal(n):
    return '%d%s' % (n, 'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(
        n % 10, 'th'))


def main(argv=None):
    ap = argparse.ArgumentParser(prog='scripts/serve', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', default=MODEL_PATH, help='config file (default: the model, '
                    'config/stampede.yaml); edit it while serving to switch modes live')
    ap.add_argument('--memory-limit', default=None,
                    help='memory cgroup size, e.g. 192M, or none (default: the config\'s '
                         'supervisor.memory_limit_mb)')
    ap.add_argument('--binary', default=os.path.join(ROOT, 'build', 'stampede'))
    ap.add_argument('server_args', nargs=argparse.REMAINDER,
                    help='after --: more stampede flags (stampede --help)')
    args = ap.parse_args(argv)
    extra = [a for a in args.server_args if a != '--']
    try:
        model = Model(args.binary, args.config, extra)
    except ValueError as e:
        ap.error(str(e))
    try:
        limit = model.memory_limit_bytes() if args.memory_limit is None \
            else parse_size(args.memory_limit)
    except ValueError:
        ap.error('--memory-limit: a size such as 192M, 1G or none (got %s)' % args.memory_limit)
    backoff = model.restart_backoff()

    cgroup = None
    if limit:
        around = own_memory_limit()
        if around and around <= limit:
            _say('already inside a %d MiB memory limit: running in it' % (around // 2**20))
        else:
            cgroup = MemoryCgroup(limit, 'stampede-serve-%d' % os.getpid())
            if not cgroup.active:
                _say('%s: the unbounded modes will not be OOM-killed' % cgroup.describe())
                cgroup = None
            else:
                _say(cgroup.describe())
    else:
        _say('no memory limit (--memory-limit none)')

    served = Served([args.binary, '--config', os.path.abspath(args.config)] + extra, cgroup)
    stopping = threading.Event()

    def on_signal(signum, _frame):
        if stopping.is_set():  # the second Ctrl-C: at once
            if served.proc and served.proc.poll() is None:
                os.killpg(served.proc.pid, signal.SIGKILL)
            return
        stopping.set()
        if served.proc and served.proc.poll() is None:
            served.proc.send_signal(signal.SIGTERM)  # the server drains, then exits

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    deaths_in_a_row = 0
    counted = cgroup.oom_kills() if cgroup else None  # the cgroup's kills before this run
    code = 0
    try:
        served.start()
        while True:
            status = served.proc.wait()
            served.pump.join(5)
            if stopping.is_set():
                code = 0 if status in (0, -signal.SIGTERM) else 1
                break
            if status >= 0:
                # A clean exit, or a start that failed (a bad config, a port in use): restarting
                # would only fail again.
                _say('stampede exited with status %d; not restarting' % status)
                code = status
                break
            up_s = time.monotonic() - served.started
            deaths_in_a_row = 1 if up_s >= STABLE_S else deaths_in_a_row + 1
            kills = cgroup.oom_kills() if cgroup else None
            if kills is not None and counted is not None and kills > counted:
                how = 'OOM-killed (the %s OOM kill in its %d MiB cgroup)' % (
                    _ordinal(kills), limit // 2**20)
            elif status == -signal.SIGKILL and cgroup is None:
                how = 'killed by SIGKILL (an OOM kill, in a limit it did not make?)'
            else:
                how = 'killed by signal %d' % -status
            counted = kills
            wait_s = min(backoff[1], backoff[0] * 2 ** (deaths_in_a_row - 1)) if backoff else 0
            _say('stampede %s after %.1f s up; restarting in %g s on the same ports' % (
                how, up_s, wait_s))
            if stopping.wait(wait_s):
                break
            served.restart()
    finally:
        if served.proc and served.proc.poll() is None:
            try:
                served.proc.wait(model['shutdown.drain_timeout_ms'] / 1000.0 + 5)
            except subprocess.TimeoutExpired:
                os.killpg(served.proc.pid, signal.SIGKILL)
                served.proc.wait()
        if cgroup:
            cgroup.close()
    return code


if __name__ == '__main__':
    sys.exit(main())
