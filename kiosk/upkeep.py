"""Nightly upkeep of the buffer: a backup copy (``VACUUM INTO``) and pruning of long-sent responses.

Use::

    upkeep = Upkeep(buffer, settings.maintenance, backup_dir=data_dir / "backups")
    report = upkeep.run()            # what `balie-kiosk backup` and the nightly job do
    schedule = UpkeepSchedule(upkeep, settings.maintenance); schedule.start()   # the app

Why both: an SD card can die, and a copy of last night's buffer on the same
card is little help then, but it is against the commoner trouble — a buffer
damaged by a power cut is set aside at start-up and the terminal starts a
fresh one: with last night's copy, only today's unsent answers are at risk,
not the whole backlog. Pruning keeps the card (and the copies) small, and
keeps visitors' answers on the counter no longer than needed (privacy): a
response is deleted ``retention_days`` after central acknowledged it; unsent,
open and quarantined responses are never deleted.

Everything runs off the UI thread (APScheduler's own thread); the buffer's
units of work are safe to share with the UI and the uploader.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from kiosk.errors import BufferUnavailable

log = logging.getLogger(__name__)

DAY_S = 86400.0
BACKUP_PREFIX = "buffer-"
BACKUP_SUFFIX = ".sqlite3"


@dataclass
class UpkeepReport:
    """What one upkeep run did; ``error`` says what failed (the rest still ran)."""

    backup: Path | None = None
    removed: list[Path] = field(default_factory=list)  # old copies deleted
    pruned: int = 0  # sent responses deleted from the buffer
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        parts = [f"backup {self.backup}" if self.backup else "no backup",
                 f"{len(self.removed)} old cop{'y' if len(self.removed) == 1 else 'ies'} removed",
                 f"{self.pruned} sent response(s) pruned"]
        return "; ".join(parts + [f"error: {e}" for e in self.errors])


class Upkeep:
    """Backs the buffer up into ``backup_dir`` (keeping ``settings.backup_keep`` copies) and prunes it.

    ``now``: the wall clock (Unix seconds); tests pass their own.
    """

    def __init__(self, buffer, settings, *, backup_dir: Path | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.buffer = buffer
        self.settings = settings
        self.backup_dir = Path(backup_dir or settings.backup_dir
                               or Path(buffer.path).parent / "backups")
        self.now = now

    def backups(self) -> list[Path]:
        """The copies in ``backup_dir``, newest first (by the UTC time in their names)."""
        if not self.backup_dir.is_dir():
            return []
        found = [p for p in self.backup_dir.iterdir()
                 if p.name.startswith(BACKUP_PREFIX) and p.name.endswith(BACKUP_SUFFIX)]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def run(self) -> UpkeepReport:
        """Back up, drop old copies, prune; each step runs even if an earlier one failed."""
        report = UpkeepReport()
        self.backup(report)
        self.prune(report)
        level = logging.INFO if report.ok else logging.WARNING
        log.log(level, "buffer upkeep: %s", report.summary())
        return report

    def backup(self, report: UpkeepReport | None = None) -> UpkeepReport:
        """Write a new copy, then delete all but the newest ``backup_keep``."""
        report = report or UpkeepReport()
        stamp = datetime.fromtimestamp(self.now(), timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = self.backup_dir / f"{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"
        try:
            self.backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            report.errors.append(f"cannot back the buffer up: cannot create the backup folder "
                                 f"{self.backup_dir}: {err.strerror or err}")
            return report
        try:
            report.backup = self.buffer.backup_to(target)
        except BufferUnavailable as err:
            # The old copies stay: a failed night never costs the previous ones.
            report.errors.append(str(err))
            return report
        for old in self.backups()[self.settings.backup_keep:]:
            try:
                old.unlink()
                report.removed.append(old)
            except OSError as err:
                report.errors.append(f"cannot delete the old copy {old}: {err.strerror or err}")
        return report

    def prune(self, report: UpkeepReport | None = None) -> UpkeepReport:
        """Delete responses sent more than ``retention_days`` ago."""
        report = report or UpkeepReport()
        cutoff = self.now() - self.settings.retention_days * DAY_S
        try:
            report.pruned = self.buffer.prune_sent(cutoff)
        except BufferUnavailable as err:
            report.errors.append(str(err))
        return report


class UpkeepSchedule:
    """Runs :meth:`Upkeep.run` every night at ``settings.backup_time`` (local time) on its own thread.

    ``coalesce`` and a misfire grace of an hour: a terminal that was off or busy
    at that time does it when it can within the hour, once; otherwise the next
    night. The UI never waits on it.
    """

    MISFIRE_GRACE_S = 3600

    def __init__(self, upkeep: Upkeep, settings) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger

        hour, minute = (int(part) for part in settings.backup_time.split(":"))
        self.upkeep = upkeep
        self.scheduler = BackgroundScheduler(daemon=True)
        self.job = self.scheduler.add_job(
            upkeep.run, CronTrigger(hour=hour, minute=minute, jitter=int(settings.jitter_s) or None),
            id="buffer-upkeep", name="buffer upkeep", max_instances=1, coalesce=True,
            misfire_grace_time=self.MISFIRE_GRACE_S)

    def start(self) -> None:
        self.scheduler.start()
        log.info("buffer upkeep scheduled: next at %s", self.job.next_run_time)

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
