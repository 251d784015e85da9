"""`python -m benchmarks [NAME ...]` (`just bench`): with no name, the side-by-side benchmark
(`bench_side_by_side`, which writes docs/BENCHMARKS.md); else the named `benchmarks/bench_*.py`
(e.g. `policies` or `bench_policies`, or `all`), each printing its figures.

Each benchmark module has a `main()`; it is called with an empty command line, so its
own options keep their defaults (run a module directly to pass options:
`uv run python -m benchmarks.bench_judge --runs 10`).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from pathlib import Path

logger = logging.getLogger("benchmarks")


def available() -> list[str]:
    """The benchmark modules present, by name (`bench_policies`, ...)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))


def run(names: list[str]) -> None:
    known = available()
    if names == ["all"]:
        names = known
    chosen = [name if name.startswith("bench_") else f"bench_{name}" for name in names] or ["bench_side_by_side"]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(known)}")
    for name in chosen:
        logger.info("== %s", name)
        module = importlib.import_module(f"benchmarks.{name}")
        sys.argv = [f"benchmarks.{name}"]
        module.main()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "httpx2"):  # one line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
