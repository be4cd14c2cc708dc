"""The workflow sandbox every worker and replayer uses.

The sandbox re-executes each non-passthrough module for every workflow run it
creates. Profiling handoffs (bench/handoff.py, py-spy) showed about a third of
the worker's CPU going to re-compiling `workflows/playbooks.py` and the
`email_validator`/`idna` modules pydantic imports lazily to check `EmailStr`.
These modules are deterministic and keep no mutable module state, so they are
imported once, outside the sandbox, and shared.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH_MODULES = (
    "domain",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "email_validator",
    "idna",
    "workflows.playbooks",
    "workflows.activity_models",
    "workflows.child_models",
    "workflows.search_attributes",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
