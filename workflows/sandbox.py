"""The workflow sandbox every worker and replayer uses.

The sandbox re-executes each non-passthrough module for every workflow
instance it creates (every new run, and every replay after a cache eviction).
Profiling handoffs (bench/handoff.py, py-spy) showed about a third of the
worker's CPU in those imports: re-compiling `workflows/playbooks.py` and the
`email_validator`/`idna` modules pydantic imports lazily to check `EmailStr`.
The modules below are deterministic and keep no mutable module state, so they
are imported once, outside the sandbox, and shared.

What must stay in the sandbox (the workflow modules themselves) is compiled
from source each time when no bytecode cache can be read, as under
PYTHONDONTWRITEBYTECODE or a read-only install; `cache_workflow_bytecode`
gives them one. Measured per AccountLifecycleWorkflow instance on 2 cores:
43.6 ms with the default sandbox and no cache, 32.9 ms with the passthrough,
15.5 ms with both.
"""

from __future__ import annotations

import compileall
import sys
from pathlib import Path

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

WORKFLOWS_DIR = Path(__file__).resolve().parent

PASSTHROUGH_MODULES = (
    "domain",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "email_validator",
    "idna",
    "workflows.playbooks",
    "workflows.drafting",
    "workflows.context",
    "workflows.activity_defs",
    "workflows.children",
    "workflows.engagement",
    "workflows.activity_models",
    "workflows.child_models",
    "workflows.search_attributes",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def cache_workflow_bytecode(cache_dir: Path) -> bool:
    """Compile workflows/ once into `cache_dir` (a pycache prefix); False if it cannot be written.

    Without a readable cache the sandbox compiles the workflow modules' source
    again for every workflow instance. Python reads an up-to-date cache even
    where it may not write one, and ignores a stale one.
    """
    if sys.pycache_prefix is None and not sys.dont_write_bytecode:
        return True  # the import system keeps __pycache__ next to the sources already
    if sys.pycache_prefix is None:
        sys.pycache_prefix = str(cache_dir)
    try:
        return bool(compileall.compile_dir(WORKFLOWS_DIR, quiet=2))
    except OSError:
        return False
