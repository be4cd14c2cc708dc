"""The daily Schedule, for the time-skipping server (which has no Schedules).

`BenchDailyScanWorkflow` does what the `portfolio-scan` Schedule does in
production (cli/schedule.py): once a day, at 02:00 UTC (its default `--at`), it runs
`PortfolioScanWorkflow` as of 00:00 UTC on the accounts' task queue, so every
running account workflow gets its `portfolio_summary` signal. The year
scenario (bench/account_year.py, mode "scheduled") runs it next to the
accounts to count their history with the scheduled scan.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.portfolio import PortfolioScanInput, PortfolioScanWorkflow

# The Schedule's default time of day (cli/schedule.py ScanSchedule.at).
FIRE_AFTER_MIDNIGHT = timedelta(hours=2)


@workflow.defn(name="BenchDailyScan")
class BenchDailyScanWorkflow:
    @workflow.run
    async def run(self, days: int, task_queue: str) -> int:
        runs = 0
        for _ in range(days):
            now = workflow.now().astimezone(UTC)
            midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
            await workflow.sleep(midnight + timedelta(days=1) + FIRE_AFTER_MIDNIGHT - now)
            await workflow.execute_child_workflow(
                PortfolioScanWorkflow.run,
                PortfolioScanInput(),
                id=f"{workflow.info().workflow_id}-{workflow.now():%Y%m%d}",
                task_queue=task_queue,
            )
            runs += 1
        return runs
