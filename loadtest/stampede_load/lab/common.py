"""What every part of the lab shares: where things are, the loopback-only and connection caps,
ports, open-file limits, progress lines, sizes."""

import os
import resource
import socket
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
LUA = os.path.join(ROOT, 'loadtest', 'wrk', 'stampede.lua')
LOOPBACK = '127.0.0.1'
MAX_CONNECTIONS = 4000  # hard cap on any one load generator's connections


def free_port(port):
    """`port` if nothing listens on it on loopback, else 0 (an ephemeral one)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((LOOPBACK, port))
        return port
    except OSError:
        return 0
    finally:
        probe.close()


def wait_until(condition, seconds, step=0.1):
    """True once condition() is; False if `seconds` pass first."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(step)
    return True


def write_atomically(path, text):
    """Writes `path` aside and renames it into place, as editors save: a server that polls its
    config never reads it half written (an empty file is a valid config of defaults)."""
    with open(path + '.new', 'w') as f:
        f.write(text)
    os.replace(path + '.new', path)


def ephemeral_port():
    """A port nothing listens on now, picked by the kernel."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def raise_fd_limit():
    """Lets this process and its children (wrk, stampede) open many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Progress:
    """One status line, rewritten in place on a terminal, printed now and then otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def line(self, text):
        """A line that stays (not overwritten by the next progress update)."""
        self.stream.write(('\r\033[K' if self.tty else '') + text + '\n')
        self.stream.flush()

    def show(self, text, force=False):
        now = time.monotonic()
        if self.tty:
            self.stream.write('\r\033[K' + text)
            self.stream.flush()
        elif force or now - self.last >= 5:
            self.stream.write(text + '\n')
            self.stream.flush()
            self.last = now

    def done(self):
        if self.tty:
            self.stream.write('\r\033[K')
            self.stream.flush()


def parse_size(text):
    """'192M', '1G', '512k', '1048576' -> bytes; 'none' -> None. Raises ValueError."""
    t = str(text).strip().lower()
    if t in ('none', 'off', '0', ''):
        return None
    units = {'k': 2**10, 'm': 2**20, 'g': 2**30}
    t = t[:-1] if t.endswith('b') and len(t) > 1 and t[-2] in units else t
    if t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


