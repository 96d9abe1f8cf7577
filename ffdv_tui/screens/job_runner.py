"""A screen that runs engine jobs: the one place for a job's started / progress / done, shown the same way.

The checkpoints screen (evaluate, predict, a matrix) and the matrix screen (a row's
submission) derive from ``JobRunnerScreen``: a job runs in a thread worker, its
progress fills the screen's bar (``JOB_BAR``, when it has one) and its outcome, or why
it failed, replaces the note (``JOB_NOTE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import RenderableType
from textual import on
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ProgressBar, Static

from engine.contract.errors import FfdvError
from engine.contract.jobs import JobError, JobResult, run_engine_job
from engine.contract.text import plain_text


class JobRunnerScreen(Screen):
    """A screen that runs engine jobs one at a time and shows each in its note (and bar)."""

    JOB_NOTE = "#job-result"  # the Static that shows what a job is doing, then its outcome
    JOB_BAR: str | None = "#job-progress"  # the ProgressBar, hidden between jobs; None: the screen has none

    @dataclass
    class JobStarted(Message):
        """A job began: what it does, for the note."""

        what: str

    @dataclass
    class JobProgress(Message):
        """Progress of the running job; a newer one replaces any still queued."""

        done: int
        total: int

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, JobRunnerScreen.JobProgress)

    @dataclass
    class JobDone(Message):
        """What the job ended with, ready to show, and anything the screen keeps of it (``kept``)."""

        result: RenderableType
        kept: Any = None

    def run_job(self, args: list[str], expect: type[JobResult], what: str, failed: str,
                finish: Callable[[Any], JobDone]) -> None:
        """Start ``ffdv ARGS`` in a thread worker (one job at a time); ``finish`` turns its result into the outcome."""
        self.run_worker(lambda: self._job(args, expect, what, failed, finish), thread=True, exclusive=True,
                        group="job", exit_on_error=False)

    def _job(self, args: list[str], expect: type[JobResult], what: str, failed: str,
             finish: Callable[[Any], JobDone]) -> None:
        self.post_message(self.JobStarted(what))
        try:
            result = run_engine_job(args, self.report_progress)
            if not isinstance(result, expect):
                raise JobError(f"the engine answered {result.kind}, not {expect.kind}")
            done = finish(result)
        except (JobError, FfdvError) as exc:
            done = self.JobDone(plain_text(f"{failed}: {exc}", "red", multiline=True))
        self.post_message(done)

    def report_progress(self, done: int, total: int) -> None:
        """From any thread; a job that outlives its screen reports to nobody."""
        if self.is_attached:
            self.post_message(self.JobProgress(done, total))

    @on(JobStarted)
    def _job_started(self, message: JobStarted) -> None:
        if self.JOB_BAR is not None:
            bar = self.query_one(self.JOB_BAR, ProgressBar)
            bar.display = True
            bar.update(total=None, progress=0)
        self.query_one(self.JOB_NOTE, Static).update(plain_text(message.what, "dim"))

    @on(JobProgress)
    def _job_progress(self, message: JobProgress) -> None:
        if self.JOB_BAR is not None:
            self.query_one(self.JOB_BAR, ProgressBar).update(total=message.total or None, progress=message.done)

    @on(JobDone)
    def _job_done(self, message: JobDone) -> None:
        if self.JOB_BAR is not None:
            self.query_one(self.JOB_BAR).display = False
        self.query_one(self.JOB_NOTE, Static).update(message.result)
