"""Progress of the long-running operator tools (``migrate``, ``doctor``): what they report to, and the terminal bar
that shows it."""

from __future__ import annotations

import sys
from typing import Protocol

from tqdm import tqdm


class Progress(Protocol):
    def add_total(self, count: int) -> None: ...

    def advance(self, count: int) -> None: ...


class Silent:
    """Progress nobody watches."""

    def add_total(self, count: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


class BarProgress:
    """A ``tqdm`` bar on stderr, silent when stderr is not a terminal (cron, CI, pipes)."""

    def __init__(self, *, enabled: bool, desc: str = "migrating", unit: str = "msg") -> None:
        self.bar = tqdm(total=0, unit=unit, desc=desc, disable=not enabled, file=sys.stderr, dynamic_ncols=True)

    def add_total(self, count: int) -> None:
        self.bar.total = (self.bar.total or 0) + count
        self.bar.refresh()

    def advance(self, count: int) -> None:
        self.bar.update(count)

    def close(self) -> None:
        self.bar.close()
