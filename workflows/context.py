"""What a playbook may use of the workflow that runs it, handed over explicitly.

The account workflow owns one ``PlaybookContext`` (its state, its timeline
log, its timeouts, its task queues, its draft policy) and passes it to every
playbook call; a child workflow builds its own (no state, log to the worker
logger). Playbooks never import the workflow class or touch its private
members, so there is no import cycle between ``workflows/account.py`` and
``workflows/playbooks.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from domain.digest import DraftPolicy
from domain.state import AccountState


def _no_log(kind: str, text: str) -> None:
    return None


@dataclass
class PlaybookContext:
    account_id: str
    llm_task_queue: str
    task_queue: str  # the account workflow's own queue (QBR and save children run there)
    sales_task_queue: str = "vim-sales"
    activity_timeout: timedelta = timedelta(minutes=2)
    policy: DraftPolicy = field(default_factory=DraftPolicy)
    state: AccountState | None = None  # the account's state; None in a child workflow
    log: Callable[[str, str], None] = _no_log  # (kind, text) -> the account's timeline
    mark_milestone: Callable[[str, str], None] = _no_log  # (milestone, source)

    @property
    def s(self) -> AccountState:
        """The account state; only account-workflow playbooks ask for it."""
        if self.state is None:
            raise RuntimeError("this playbook needs the account workflow's state")
        return self.state
