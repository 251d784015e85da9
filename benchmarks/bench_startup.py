"""Proxy start to ready: spawn `mitmdump -s addons/bundle.py` until its port accepts.

Target < 1.5 s without a judge configured (litellm must stay off the start-up path).
"""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MITMDUMP = Path(sys.executable).parent / "mitmdump"
_LISTENING = re.compile(rb"listening at 127\.0\.0\.1:(\d+)")


def start_to_ready(workdir: Path, bundle: bool = True) -> float:
    args = [str(MITMDUMP), "--listen-host", "127.0.0.1", "--listen-port", "0", "--set", f"confdir={workdir}"]
    if bundle:
        args += ["-s", str(REPO / "addons" / "bundle.py"), "--set", f"interlock_db={workdir / 'bench.db'}"]
    out = workdir / "out.log"
    started = time.perf_counter()
    with out.open("wb") as handle:
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = started + 30
        while time.perf_counter() < deadline:
            found = _LISTENING.search(out.read_bytes())
            if found:
                with socket.create_connection(("127.0.0.1", int(found.group(1))), timeout=1):
                    return time.perf_counter() - started
            time.sleep(0.01)
        raise RuntimeError(f"not ready after 30 s:\n{out.read_text()}")
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start_to_ready(Path(tmp))  # the first start also creates the CA
        times = [start_to_ready(Path(tmp)) for _ in range(5)]
        bare = [start_to_ready(Path(tmp), bundle=False) for _ in range(5)]
    print(f"startup: proxy start to ready, median of 5: {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); target < 1500 ms; "
          f"bare mitmdump: {statistics.median(bare) * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
