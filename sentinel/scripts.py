"""The queue of notification / client-reconfig scripts, without running them.

Redis keeps at most 256 queued jobs and runs at most 16 at a time; a job
that exits with code 1 or dies from a signal is retried up to 10 times with
a doubling delay (30 s, 60 s, ...); one that runs for more than 60 s is
killed. The state machine emits RunScript / KillScript actions and learns
the outcome from `started` / `exited`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .actions import Event, KillScript, LogLevel, RunScript

MAX_QUEUE = 256
MAX_RUNNING = 16
MAX_RETRY = 10


@dataclass(eq=False)
class ScriptJob:
    job_id: int
    argv: tuple[str, ...]
    running: bool = False
    retry_num: int = 0
    # start time when running; earliest next start when waiting (0 = now)
    start_time: int = 0
    pid: int = 0
    kill_sent: bool = False


class ScriptQueue:
    def __init__(self) -> None:
        self.jobs: list[ScriptJob] = []
        self._next_id = 1

    @property
    def running(self) -> int:
        return sum(1 for job in self.jobs if job.running)

    def schedule(self, argv: tuple[str, ...]) -> None:
        self.jobs.append(ScriptJob(self._next_id, argv))
        self._next_id += 1
        if len(self.jobs) > MAX_QUEUE:
            # Drop the oldest job that is not running.
            for job in self.jobs:
                if not job.running:
                    self.jobs.remove(job)
                    break

    def run_pending(self, now: int) -> list[RunScript]:
        actions: list[RunScript] = []
        running = self.running
        for job in self.jobs:
            if running >= MAX_RUNNING:
                break
            if job.running or (job.start_time and job.start_time > now):
                continue
            job.running = True
            job.start_time = now
            job.retry_num += 1
            job.pid = 0
            job.kill_sent = False
            running += 1
            actions.append(RunScript(job.job_id, job.argv))
        return actions

    def _find(self, job_id: int) -> ScriptJob | None:
        for job in self.jobs:
            if job.job_id == job_id:
                return job
        return None

    def started(self, job_id: int, pid: int) -> list[Event]:
        job = self._find(job_id)
        if job is None:
            return []
        job.pid = pid
        return [Event("+script-child", str(pid), LogLevel.DEBUG)]

    def exited(self, job_id: int, exitcode: int, signal: int, now: int, retry_delay: int) -> list[Event]:
        job = self._find(job_id)
        if job is None:
            return []
        events = [Event("-script-child", f"{job.pid} {exitcode} {signal}", LogLevel.DEBUG)]
        if (signal or exitcode == 1) and job.retry_num != MAX_RETRY:
            job.running = False
            job.pid = 0
            delay = retry_delay
            for _ in range(job.retry_num - 1):
                delay *= 2
            job.start_time = now + delay
        else:
            if signal or exitcode != 0:
                events.append(Event("-script-error", f"{job.argv[0]} {signal} {exitcode}"))
            self.jobs.remove(job)
        return events

    def kill_timed_out(self, now: int, max_runtime: int) -> list[Event | KillScript]:
        actions: list[Event | KillScript] = []
        for job in self.jobs:
            if job.running and job.pid and not job.kill_sent and now - job.start_time > max_runtime:
                job.kill_sent = True
                actions.append(Event("-script-timeout", f"{job.argv[0]} {job.pid}"))
                actions.append(KillScript(job.job_id, job.pid))
        return actions

    def describe(self, now: int) -> list[dict]:
        """SENTINEL PENDING-SCRIPTS."""
        out = []
        for job in self.jobs:
            entry: dict = {"argv": list(job.argv), "flags": "running" if job.running else "scheduled",
                           "pid": str(job.pid)}
            if job.running:
                entry["run-time"] = str(now - job.start_time)
            else:
                delay = max(0, job.start_time - now) if job.start_time else 0
                entry["run-delay"] = str(delay)
            entry["retry-num"] = str(job.retry_num)
            out.append(entry)
        return out
