"""Progress lines: what a chapter is doing now, for the person watching the terminal.

The core and the chapters call ``say``; the line goes to the process's stderr behind a
marker. When a chapter runs under the runner, the runner shows only marked lines (with the
chapter's elapsed and remaining minutes) and sends everything else the kernel prints
(papermill's cell banners, outputs, warnings) to the chapter's log file; the book's pages
drop stderr, so progress never reaches a page. Run by hand, a marked line simply prints.
"""

from __future__ import annotations

import sys

MARK = "» "  # starts every progress line on the kernel's stderr


def say(text: str) -> None:
    """One progress line (what is being trained or computed, an epoch, a step)."""
    print(f"{MARK}{text}", file=sys.stderr, flush=True)


def marked(text: str) -> list[str]:
    """The progress lines in a chunk of a kernel's output, without their marker."""
    return [line[len(MARK):] for line in text.splitlines() if line.startswith(MARK)]


def minutes(seconds: float) -> str:
    """``seconds`` as a person reads a duration: "45 s", "3.2 min", "1 h 05 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m:02d} min"
