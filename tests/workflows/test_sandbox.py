"""The worker's sandbox setup: workflow modules get a bytecode cache even where none is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.util, sys
from pathlib import Path
from workflows.sandbox import WORKFLOWS_DIR, cache_workflow_bytecode
ok = cache_workflow_bytecode(Path(sys.argv[1]))
print(ok, importlib.util.cache_from_source(str(WORKFLOWS_DIR / "account.py")))
"""


def test_workflow_bytecode_is_cached_under_the_data_dir_when_python_writes_none(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "pycache")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "True"
    cached = Path(out[1])
    assert cached.is_relative_to(tmp_path / "pycache")
    assert cached.is_file()  # the sandbox's importer reads it instead of compiling account.py
