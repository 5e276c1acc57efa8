"""Running the service: one process, or several sharing the port, each stopping gracefully.

On SIGTERM or SIGINT a process stops accepting connections, lets requests in flight (uploads, downloads, ZIP
streams) finish for up to ``shutdown_grace_s`` seconds, then closes its CouchDB sessions (aiohttp's runner does
it in that order: sites, then handlers, then the application's cleanup). The bundled CouchDB, when there is one,
belongs to the caller and is stopped after every process has finished.

With ``workers`` > 1 the parent process only supervises: each worker binds the port with SO_REUSEPORT and the
kernel spreads connections among them. A SIGTERM to the parent is passed to every worker; a worker that dies
on its own takes the others down with it, so that the service manager (systemd, the container runtime) restarts
the whole service rather than running it short-handed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from kazoo_vm import allocator, appkeys
from kazoo_vm.config import Settings
from kazoo_vm.logs import configure_logging

log = logging.getLogger(__name__)

AppFactory = Callable[[Settings], web.Application]


def run_one(settings: Settings, make_app: AppFactory, *, reuse_port: bool = False) -> None:
    """Serve in this process until SIGTERM or SIGINT, then stop gracefully."""
    allocator.pin_mmap_threshold(settings.malloc_mmap_threshold_bytes)
    asyncio.run(_serve(make_app(settings), settings, reuse_port=reuse_port))
    log.info("stopped")


async def _serve(app: web.Application, settings: Settings, *, reuse_port: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # aiohttp's own shutdown stops reading from every connection at once, which would cut off an upload whose
    # body is still arriving: the drain below comes first, and leaves aiohttp only idle connections to close.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    # A stop asked for while starting (waiting for CouchDB, say) ends the start at once.
    starting = asyncio.ensure_future(runner.setup())
    stop_asked = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("stopped while starting")
        return
    await starting  # a failed start raises here
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
        await site.start()
        await stop_asked
        await site.stop()  # no new connections
        activity = app[appkeys.ACTIVITY]
        activity.stopping = True
        log.info(
            "stopped accepting connections; %d requests in flight have %gs to finish",
            activity.in_flight,
            settings.shutdown_grace_s,
        )
        await _drain(activity, settings.shutdown_grace_s)
    finally:
        await runner.cleanup()  # idle connections, then the application's cleanup (CouchDB sessions)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _drain(activity: appkeys.Activity, grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    while activity.in_flight > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if activity.in_flight > 0:
        log.warning("grace period over: cutting off %d requests in flight", activity.in_flight)


MAX_WORKERS = 64


def worker_count(raw: str) -> int:
    """``--workers``: a number of processes from 1 to :data:`MAX_WORKERS`."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to {MAX_WORKERS}")
    return value


def worker_settings(settings: Settings, index: int) -> Settings:
    """Worker ``index``'s settings: a separate metrics listener gets its own port (``metrics_port`` + index)."""
    if settings.metrics_port is None:
        return settings
    return dataclasses.replace(settings, metrics_port=settings.metrics_port + index)


def _worker_main(settings: Settings, make_app: AppFactory, index: int) -> None:
    configure_logging(settings)
    logging.getLogger(__name__).info("worker %d starting", index)
    run_one(worker_settings(settings, index), make_app, reuse_port=True)


def serve(settings: Settings, make_app: AppFactory) -> int:
    """Serve with ``settings.workers`` processes; returns the exit status."""
    if settings.workers <= 1:
        run_one(settings, make_app)
        return 0
    return _supervise(settings, make_app)


def _supervise(settings: Settings, make_app: AppFactory) -> int:
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: list[BaseProcess] = []
    status = 0
    try:
        for index in range(settings.workers):
            process = context.Process(
                target=_worker_main, args=(settings, make_app, index), name=f"kazoo-vm-worker-{index}"
            )
            process.start()
            workers.append(process)
        log.info("%d workers serving on %s:%s", len(workers), settings.host, settings.port)
        while not stopping:
            dead = [process for process in workers if not process.is_alive()]
            if dead:
                log.error("worker %s exited (status %s): stopping the service", dead[0].name, dead[0].exitcode)
                status = 1
                break
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_workers(workers, settings.shutdown_grace_s)
    return status


def _stop_workers(workers: list[BaseProcess], grace_s: float) -> None:
    for process in workers:
        if process.is_alive() and process.pid is not None:
            process.terminate()  # SIGTERM: each worker stops gracefully
    deadline = time.monotonic() + grace_s + 10.0  # the grace period, plus time to close sessions
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.error("worker %s did not stop in time: killing it", process.name)
            process.kill()
            process.join()
