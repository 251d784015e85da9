"""The Interlock bundle without its recorder: `addons/bundle.py`'s addons but `Recording`.

`mitmdump -s benchmarks/unrecorded_bundle.py --set interlock_config=...` matches, polices
and times out calls as Interlock does, and records nothing (so announces nothing: the
terminal line, the budgets and the alerts hear of no call). `bench_instructions` runs it
to tell what recording costs from what the rest of Interlock does.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from addons import bundle
from addons.recording import Recording

addons = [addon for addon in bundle.addons if not isinstance(addon, Recording)]
