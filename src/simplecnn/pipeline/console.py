"""What a person running the book sees: the plan before it starts, one progress line per
step while a chapter runs (with its elapsed and remaining minutes), and where the full log is.

Everything the kernel prints reaches papermill's logger. ``chapter_output`` sends all of it
to the chapter's log file (``<executed>/<chapter>.log``) and shows on the terminal only the
progress lines the core and the chapters mark (``core.progress``): papermill's parameter
inspection, cell banners, object reprs, warnings and tracebacks stay in the file.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from simplecnn.core import progress

LOGGER = "papermill"


def out(text: str) -> None:
    """One line on the terminal (stdout, flushed)."""
    print(text, flush=True)


@dataclass
class Clock:
    """The run's clock: expected seconds per chapter, and what has been spent."""

    expected: dict[str, float]
    started: float = field(default_factory=time.perf_counter)
    done: dict[str, float] = field(default_factory=dict)

    def remaining(self, study: str | None = None, elapsed: float = 0.0) -> float:
        """Seconds expected from now: what is left of ``study`` (at ``elapsed``) and every
        chapter not yet started."""
        left = [s for s in self.expected if s not in self.done and s != study]
        current = max(0.0, self.expected.get(study, 0.0) - elapsed) if study else 0.0
        return current + sum(self.expected[s] for s in left)


class ChapterConsole(logging.Handler):
    """Shows the marked progress lines of one running chapter, each prefixed with the
    chapter's name, elapsed and expected minutes."""

    def __init__(self, study: str, clock: Clock, position: str):
        super().__init__(logging.INFO)
        self.study, self.clock, self.position = study, clock, position
        self.started = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        for line in progress.marked(record.getMessage()):
            elapsed = time.perf_counter() - self.started
            expected = self.clock.expected.get(self.study)
            left = "" if expected is None else f", ~{progress.minutes(self.clock.remaining(self.study, elapsed))} left"
            out(f"  {self.position} {self.study} {progress.minutes(elapsed)}{left} | {line}")


def quiet() -> None:
    """Papermill's own messages (parameter inspection, cell banners) go nowhere but to a
    chapter's log file while it runs."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


@contextlib.contextmanager
def chapter_output(study: str, log_file: Path, clock: Clock, position: str) -> Iterator[ChapterConsole]:
    """While a chapter runs: its full output into ``log_file``, its progress on the terminal."""
    quiet()
    logger = logging.getLogger(LOGGER)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = ChapterConsole(study, clock, position)
    logger.addHandler(file_handler)
    logger.addHandler(console)
    try:
        yield console
    finally:
        logger.removeHandler(console)
        logger.removeHandler(file_handler)
        file_handler.close()


def plan_lines(profile: str, rows: list[tuple[str, str, float, str]]) -> list[str]:
    """The plan printed before a run: each chapter (study, notebook, expected seconds, where
    the figure comes from) and the total."""
    to_run = [r for r in rows if r[3] != "up to date"]
    total = sum(r[2] for r in to_run)
    lines = [f"{profile} profile: {len(to_run)} of {len(rows)} chapters to execute, expected "
             f"{progress.minutes(total)} on this machine"]
    for study, notebook, seconds, source in rows:
        shown = "—" if source == "up to date" else progress.minutes(seconds)
        lines.append(f"  {notebook:24s} {shown:>10s}   {source}")
    return lines


def error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr, flush=True)
