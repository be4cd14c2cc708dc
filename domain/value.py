"""Value Proof: ROI and RoSI as an executive summary, from the QBR's ROI section (pure).

The figures are the QBR's own (``domain/qbr.py`` ``_roi``: the configured value
drivers times the usage of the period, at the loaded hourly cost, against the
subscription cost pro-rated to the period), so the summary and the QBR never
disagree. RoSI (return on subscription investment) is the net value over the
cost: ``(value - cost) / cost``; the ROI multiple is ``value / cost``.
"""

from __future__ import annotations

from pydantic import BaseModel

from domain.health import fmt_money, fmt_num, round_half_up
from domain.narrative import QbrRoiFacts


class ValueSummary(BaseModel):
    account_id: str
    account_name: str
    period_days: int
    hours_saved: float | None = None
    value_usd: float | None = None
    period_cost: float | None = None
    net_value: float | None = None
    roi_multiple: float | None = None
    rosi_pct: float | None = None  # (value - cost) / cost, in percent
    drivers: list[str] = []  # the largest contributions, with their volumes

    def lines(self) -> list[str]:
        """The executive summary, one statement a line."""
        out = [f"{self.account_name}: value delivered over the last {self.period_days} days"]
        if self.value_usd is None:
            out.append("No configured value driver was used in the period: no value to report.")
            return out
        out.append(
            f"About {fmt_money(self.value_usd)} of time saved ({fmt_num(self.hours_saved)} hours)."
        )
        if self.period_cost is not None and self.roi_multiple is not None:
            out.append(
                f"Against {fmt_money(self.period_cost)} of subscription for the period: "
                f"{fmt_num(self.roi_multiple)}x the cost, a RoSI of {fmt_num(self.rosi_pct, 0)}% "
                f"({fmt_money(self.net_value)} net)."
            )
        out += [f"- {d}" for d in self.drivers]
        return out


def value_summary(roi: QbrRoiFacts) -> ValueSummary:
    cost, value = roi.period_cost, roi.value_usd
    net = rosi = None
    if cost and value is not None:
        net = round_half_up(value - cost, 0)
        rosi = round_half_up((value - cost) / cost * 100, 1)
    return ValueSummary(
        account_id=roi.account_id,
        account_name=roi.account_name,
        period_days=roi.period_days,
        hours_saved=roi.hours_saved,
        value_usd=value,
        period_cost=cost,
        net_value=net,
        roi_multiple=roi.roi_multiple,
        rosi_pct=rosi,
        drivers=list(roi.evidence),
    )
