"""The sales handoff: what Sales knows when an account becomes a customer."""

from __future__ import annotations

import re
from datetime import date

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from domain.limits import (
    PG_INT_MAX,
    PG_NUMERIC_12_2_MAX,
    PG_NUMERIC_14_2_MAX,
    Finite,
    Name,
    RecordId,
    ShortText,
    Text,
)

ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
TIERS = ("tier-1", "tier-2", "tier-3")


class HandoffContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_date: date
    end_date: date
    arr: Finite = Field(
        gt=0, le=PG_NUMERIC_14_2_MAX, description="Annual recurring revenue in dollars"
    )
    seats_purchased: int = Field(gt=0, le=PG_INT_MAX)
    price_per_seat: Finite = Field(
        gt=0, le=PG_NUMERIC_12_2_MAX, description="Dollars per seat per year"
    )
    licensed_modules: list[RecordId] = Field(default_factory=lambda: ["core"], max_length=100)
    notice_on: date | None = Field(
        default=None,
        description="The day the customer gave notice that they will leave (end_date stays "
        "the day service ends); None: no notice",
    )

    @model_validator(mode="after")
    def _end_after_start(self) -> HandoffContract:
        if self.end_date <= self.start_date:
            raise ValueError(f"end_date {self.end_date} must be after start_date {self.start_date}")
        check_notice(self.notice_on, self.start_date, self.end_date)
        return self


def check_notice(notice_on: date | None, start_date: date, end_date: date) -> None:
    """A notice is given during the term it ends: start_date <= notice_on <= end_date."""
    if notice_on is not None and not start_date <= notice_on <= end_date:
        raise ValueError(
            f"notice_on {notice_on} must be within the term {start_date} .. {end_date}"
        )


class HandoffStakeholder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: EmailStr | None = None
    title: ShortText | None = None
    role: ShortText = "user"
    is_champion: bool = False


class Handoff(BaseModel):
    """Input of AccountLifecycleWorkflow. Add fields with defaults only."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    name: Name
    tier: str = "tier-3"
    industry: ShortText | None = None
    csm_owner: Name
    csm_email: EmailStr
    rep_owner: Name | None = None
    rep_email: EmailStr | None = None
    contract: HandoffContract
    stakeholders: list[HandoffStakeholder] = Field(default_factory=list, max_length=200)
    goals: list[ShortText] = Field(
        default_factory=list, max_length=50, description="Success criteria agreed in the sale"
    )
    notes: Text | None = None
    # For accounts imported mid-life (e.g. migrating a portfolio): milestones
    # already reached, so the lifecycle gates open at once.
    milestones: list[str] = Field(default_factory=list)

    @field_validator("account_id")
    @classmethod
    def _account_id_shape(cls, v: str) -> str:
        if not ACCOUNT_ID_PATTERN.match(v):
            raise ValueError(
                "account_id must be 1-64 characters of letters, digits, '_', '.', ':' or '-'"
            )
        return v

    @field_validator("tier")
    @classmethod
    def _tier_known(cls, v: str) -> str:
        if v not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        return v

    @field_validator("milestones")
    @classmethod
    def _milestones_known(cls, v: list[str]) -> list[str]:
        from domain.lifecycle import MILESTONES

        unknown = [m for m in v if m not in MILESTONES]
        if unknown:
            raise ValueError(f"unknown milestones {unknown}; known: {', '.join(MILESTONES)}")
        return v

    @property
    def workflow_id(self) -> str:
        return account_workflow_id(self.account_id)


def account_workflow_id(account_id: str) -> str:
    return f"account-{account_id}"
