"""A minimal single-host stand-in for torchrun: start N copies of a module with torchrun's environment.

    python3 -m rehyat.launch --nproc 2 [--master-port 0] [--timeout S] -m rehyat.train ARGS...   (from training/)

Each process gets RANK = LOCAL_RANK = i, WORLD_SIZE = LOCAL_WORLD_SIZE = N, MASTER_ADDR, MASTER_PORT
(0: a free port picked here) and OMP_NUM_THREADS (1 unless set), which is all rehyat.ddp.init reads.
When one process fails, the others are stopped and its exit status is returned (as torchrun does); past
--timeout seconds all are stopped and the status is 124. Why it exists: the Debian torch 1.13 of the CPU
machines ships a torchrun that fails at start under Python 3.11 (its ``Std.from_str("0")`` returns
None), so the CPU tests launch ranks with this; the GPU machine (torch 2.11) uses torchrun itself.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs, grace=10.0):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    end = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(nproc: int, module: str, args, master_port: int = 0, timeout: float = 0.0, env=None) -> int:
    port = master_port or free_port()
    base = dict(os.environ if env is None else env)
    base.setdefault("OMP_NUM_THREADS", "1")
    procs = []
    for r in range(nproc):
        e = dict(base, RANK=str(r), LOCAL_RANK=str(r), GROUP_RANK="0", ROLE_RANK=str(r), WORLD_SIZE=str(nproc),
                 LOCAL_WORLD_SIZE=str(nproc), ROLE_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1",
                 MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, "-m", module, *args], env=e))
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(signum, _frame):
        _stop(procs)
        sys.exit(128 + signum)

    for s in old:
        signal.signal(s, on_signal)
    try:
        t0 = time.time()
        while True:
            codes = [p.poll() for p in procs]
            bad = [c for c in codes if c not in (None, 0)]
            if bad:
                _stop(procs)
                return bad[0]
            if all(c == 0 for c in codes):
                return 0
            if timeout and time.time() - t0 > timeout:
                print(f"[launch] timeout after {timeout:.0f} s: stopping {nproc} processes", file=sys.stderr, flush=True)
                _stop(procs)
                return 124
            time.sleep(0.1)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, required=True)
    ap.add_argument("--master-port", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=0.0, help="seconds; 0: none")
    ap.add_argument("-m", dest="module", required=True, help="module to run in every process; the rest goes to it")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("-m") + 2 if "-m" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    sys.exit(launch(a.nproc, a.module, argv[cut:], a.master_port, a.timeout))


if __name__ == "__main__":
    main()
