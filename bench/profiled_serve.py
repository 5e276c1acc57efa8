#!/usr/bin/env python3
"""``kazoo-vm serve`` under yappi's CPU clock: on exit (SIGINT/SIGTERM) writes the functions the service spent its
CPU in, by their own and their total time, to the file named by the first argument. Used by
``bench_fast_path.py --profile FILE``; yappi is a development tool, not a dependency of the service."""

from __future__ import annotations

import sys

import yappi  # type: ignore[import-not-found]  # a development tool, not installed with the project

from kazoo_vm.cli import main


def run(output: str) -> int:
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)
    try:
        return main(["serve"])
    finally:
        yappi.stop()
        stats = yappi.get_func_stats()
        with open(output, "w") as out:
            stats.sort("tsub").print_all(
                out=out, columns={0: ("name", 110), 1: ("ncall", 12), 3: ("tsub", 10), 4: ("ttot", 10)}
            )
            out.write("\n\n")
            stats.sort("ttot").print_all(
                out=out, columns={0: ("name", 110), 1: ("ncall", 12), 3: ("tsub", 10), 4: ("ttot", 10)}
            )


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
