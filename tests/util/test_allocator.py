"""The Arrow pool a scan allocates from: jemalloc unless the user named one."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pytest

from flowwarden.util.allocator import POOL_VARIABLE

try:
    pa.jemalloc_memory_pool()
    HAS_JEMALLOC = True
except NotImplementedError:
    HAS_JEMALLOC = False

# Each case runs in its own process: the pool is process-wide, and pyarrow reads the
# variable when it is first imported.
CHOOSE = """
from flowwarden.util.allocator import choose_arrow_pool
import pyarrow as pa
print(choose_arrow_pool(), pa.default_memory_pool().backend_name)
"""

CLI = """
import sys
import pyarrow as pa
from flowwarden.cli.app import main
main(["explain", "AWS.VPC.UnapprovedOutboundDNS"], standalone_mode=False)
print("pool:", pa.default_memory_pool().backend_name, file=sys.stderr)
"""


def run(code: str, pool: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != POOL_VARIABLE}
    if pool is not None:
        env[POOL_VARIABLE] = pool
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done


def test_jemalloc_is_chosen_when_the_user_named_no_pool():
    chosen, in_use = run(CHOOSE, None).stdout.split()
    assert chosen == in_use
    assert in_use == ("jemalloc" if HAS_JEMALLOC else pa.default_memory_pool().backend_name)


def test_a_pool_the_user_named_is_kept():
    assert run(CHOOSE, "system").stdout.split() == ["system", "system"]


@pytest.mark.skipif(not HAS_JEMALLOC, reason="this pyarrow has no jemalloc to choose")
def test_the_command_chooses_the_pool_before_it_runs():
    assert "pool: jemalloc" in run(CLI, None).stderr
    assert "pool: system" in run(CLI, "system").stderr
