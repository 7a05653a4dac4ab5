"""The units whose code runs for one request, counted, not read: scripts/path-units.

A build made with -finstrument-functions (system headers excluded) and enter_trace.c records
every project function the server enters while a recording is on. One request is recorded
at a time, on a connection of its own (accept to response), `--requests` times; what an idle
window of the same length also shows (the admin thread's timers, the samplers) is taken out,
and so is what not every request entered. A unit is a source family: x.hpp, x.cpp and
x_impl.hpp count once.
"""

import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, target, timeout=10.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", target)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def record(pid, out, action):
    """The set of (address, order) entered while `action` runs."""
    if out.exists():
        out.unlink()
    os.kill(pid, signal.SIGUSR1)
    time.sleep(0.02)  # the signal is taken before the window starts
    began = time.monotonic()
    action()
    os.kill(pid, signal.SIGUSR2)
    for _ in range(500):
        if out.exists() and out.stat().st_size > 0:
            time.sleep(0.05)  # the writer's whole file
            break
        time.sleep(0.01)
    seen = {}
    for line in out.read_text().splitlines():
        addr, order = line.split()
        seen[int(addr, 16)] = int(order)
    return seen, time.monotonic() - began


def resolve(binary, addresses):
    """address -> (function, source path relative to the repository) for project code."""
    addresses = sorted(addresses)
    text = subprocess.run(["addr2line", "-f", "-C", "-e", str(binary)] +
                          [hex(a) for a in addresses], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    where = {}
    for a, fn, loc in zip(addresses, text[0::2], text[1::2]):
        path = loc.rsplit(":", 1)[0]
        if path.startswith(str(ROOT) + "/"):
            where[a] = (fn, os.path.relpath(path, ROOT))
    return where


def unit_of(path):
    return re.sub(r"(_impl)?\.(hpp|cpp|h|c)$", "", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary", type=Path)
    ap.add_argument("--mode", default="bounded")
    ap.add_argument("--target", default="/work/io?ms=100")
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--functions", action="store_true", help="list each unit's functions")
    args = ap.parse_args()

    port, admin = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "entered"
        env = dict(os.environ, STAMPEDE_TRACE_OUT=str(out))
        server = subprocess.Popen(
            [str(args.binary), "--config", str(ROOT / "config/stampede.yaml"), "--mode",
             args.mode, "--listen", f"127.0.0.1:{port}", "--admin-listen",
             f"127.0.0.1:{admin}", "--log-level", "error"], env=env)
        try:
            for _ in range(200):
                try:
                    if get(admin, "/healthz", 1.0)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            for _ in range(5):  # first-time paths (lazy statics, pools) out of the count
                get(port, args.target)
            runs, idle = [], {}
            for _ in range(args.requests):
                status = []
                # The server's bookkeeping after the answer is written (the request's count,
                # the connection's close) is part of the request: 50 ms for it.
                seen, took = record(server.pid, out, lambda: (
                    status.append(get(port, args.target)[0]), time.sleep(0.05)))
                if status != [200]:
                    sys.exit(f"the request answered {status}")
                runs.append(seen)
                quiet, _ = record(server.pid, out, lambda: time.sleep(took))
                idle.update(quiet)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

    common = set(runs[0]).intersection(*runs[1:]) - set(idle)
    where = resolve(args.binary, common)
    units = {}
    for a in sorted(where, key=lambda a: runs[0][a]):
        fn, path = where[a]
        units.setdefault(unit_of(path), []).append(fn)
    print(f"GET {args.target} in {args.mode} mode: {len(where)} project functions "
          f"in {len(units)} units, in the order first entered")
    for i, (unit, fns) in enumerate(units.items(), 1):
        print(f"{i:3}. {unit:34} {len(fns):3} functions")
        if args.functions:
            for fn in fns:
                print(f"       {fn}")


if __name__ == "__main__":
    main()
