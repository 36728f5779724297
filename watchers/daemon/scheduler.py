"""APScheduler around the runner: cron/interval triggers with jitter, max_instances=1, coalescing,
a misfire grace time; every firing, run, miss and overlap lands in the run store."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from driftgate.watchers.daemon.jobs import DaemonSettings, JobConfig
from driftgate.watchers.daemon.runner import Runner
from driftgate.watchers.daemon.store import RunStore

log = logging.getLogger("driftgate.daemon")


def new_scheduler(settings: DaemonSettings) -> BaseScheduler:
    """A background scheduler in UTC with the daemon's job defaults."""
    return BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=max(2, len(settings.jobs)))},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.misfire_grace_seconds or None,
        },
    )


class Daemon:
    """The scheduled jobs, their runner and their history."""

    def __init__(
        self,
        settings: DaemonSettings,
        runner: Runner,
        store: RunStore,
        scheduler: BaseScheduler | None = None,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.store = store
        self.scheduler = scheduler or new_scheduler(settings)
        self.stopped = threading.Event()
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    def enabled(self) -> Sequence[JobConfig]:
        """The jobs that run."""
        return [j for j in self.settings.jobs if j.enabled]

    def start(self, *, first_run_now: bool = False) -> None:
        """Mark runs left `running` by a dead daemon abandoned, add the jobs, start scheduling."""
        left = self.store.abandon_running("the daemon stopped while this ran (found at start-up)")
        if left:
            log.warning("%d run(s) left running by an earlier daemon marked abandoned", left)
        now = datetime.now(UTC)
        for job in self.enabled():
            self.scheduler.add_job(
                self.fire,
                job.trigger(),
                args=[job],
                id=job.name,
                name=job.name,
                replace_existing=True,
                **({"next_run_time": now} if first_run_now else {}),
            )
            log.info("job %s: %s", job.name, job.schedule)
        self.scheduler.start()

    def fire(self, job: JobConfig) -> None:
        """One run of `job`: recorded before and after; a failure is logged and never raised."""
        run_id = self.store.start_run(job.name)
        log.info("job %s started (run %d)", job.name, run_id)
        try:
            outcome = self.runner.run(job)
        except Exception:
            detail = traceback.format_exc()
            log.error("job %s crashed (run %d):\n%s", job.name, run_id, detail)
            self.store.finish_run(run_id, "failed", None, detail)
            return
        self.store.finish_run(run_id, outcome.status, outcome.exit_code, outcome.detail)
        if outcome.status == "ok":
            log.info("job %s finished: ok (run %d)", job.name, run_id)
        else:
            log.error(
                "job %s %s (exit %s, run %d):\n%s",
                job.name,
                outcome.status,
                outcome.exit_code,
                run_id,
                outcome.detail or "",
            )

    def _on_event(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.store.record_event(event.job_id, "skipped", "the previous run is still going")
            log.warning("job %s: previous run still going, this firing skipped", event.job_id)
        elif event.code == EVENT_JOB_MISSED:
            self.store.record_event(event.job_id, "missed", "fired past the misfire grace time")
            log.warning("job %s: missed its time (past the misfire grace)", event.job_id)

    def stop(self) -> None:
        """No new firings; running jobs get the stop grace, then are ended and marked abandoned."""
        if self.scheduler.running:
            self.scheduler.pause()
        self.runner.stop(self.settings.stop_grace_seconds)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        left = self.store.abandon_running("the daemon stopped before this run ended")
        if left:
            log.warning("%d run(s) marked abandoned at shutdown", left)
        self.stopped.set()
