"""A worker imports what a merge needs when it starts, not in the serial tail of a job."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import actors.worker  # what `algotcha worker` has loaded before its first job
from actors import chunk
before = {name for name in chunk.MERGE_MODULES if name in sys.modules}
chunk.warm_up()
after = {name for name in chunk.MERGE_MODULES if name in sys.modules}
print(sorted(before), sorted(after))
"""


def test_warm_up_imports_the_merge_modules_a_worker_lacks() -> None:
    # A fresh interpreter: the test session has imported the engine long since.
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    # Not loaded by the worker's own imports (else the warm-up would be pointless), then loaded.
    assert done.stdout.split("\n")[0] == "[] ['engine.sweep', 'engine.walkforward']"
