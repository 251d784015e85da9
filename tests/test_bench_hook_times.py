"""The side-by-side benchmark's timing of Interlock's hooks inside a real mitmdump
(`benchmarks/timed_bundle.py`, `bench_side_by_side.hook_times`), on a small scale: every
hook of the bundle reports its wall time over the first-chunk calls and its CPU under
load, and the figures `just bench` writes into its verdicts add up from them."""

from __future__ import annotations

from pathlib import Path

from harness import ProxyLauncher, make_ca

from benchmarks.bench_side_by_side import hook_times
from benchmarks.servers import Servers

FIRST_BYTE_HOOKS = {
    ("requestheaders", "CallMatcher"),
    ("request", "CallMatcher"),
    ("request", "Policing"),
    ("responseheaders", "CallMatcher"),
    ("responseheaders", "Policing"),
}


def test_each_hook_has_its_wall_and_cpu_time_and_the_totals_are_theirs(tmp_path: Path) -> None:
    with Servers() as servers:
        ca = make_ca(tmp_path / "confdir")
        launcher = ProxyLauncher(tmp_path, ca, servers.urls["mock"])
        try:
            measured = hook_times(launcher, servers.urls["mock"], ca, load_s=0.5)
        finally:
            launcher.stop_all()
    rows = [line.split(" | ") for line in measured.lines if line.startswith("| `")]
    table = {(hook.strip("| `"), addon): (wall, cpu.rstrip(" |")) for hook, addon, wall, cpu in rows}
    assert FIRST_BYTE_HOOKS | {("response", "Recording")} <= set(table), sorted(table)
    first_byte = [float(wall) for (hook, _), (wall, _) in table.items() if hook != "response" and wall != "-"]
    assert abs(sum(first_byte) - measured.before_first_byte) <= len(first_byte)  # each rounded to 1 us
    cpus = [float(cpu) for _, cpu in table.values() if cpu != "-"]
    assert all(value >= 0 for value in cpus) and float(table[("response", "Recording")][1]) > 0
    assert abs(sum(cpus) - measured.hooks_cpu) <= len(cpus)
    assert 0 < measured.hooks_cpu < measured.loop_cpu, (measured.hooks_cpu, measured.loop_cpu)
