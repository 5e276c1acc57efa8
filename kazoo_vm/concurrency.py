"""Running coroutines side by side the way a crash would end them: on the first failure the others are cancelled
(``asyncio.gather`` would leave them writing in the background) and that failure is raised as itself (a
``TaskGroup`` would wrap it in an ``ExceptionGroup``, which the callers' ``except StorageError`` would miss);
:func:`gather_bounded` does the same with at most ``limit`` of them running at once, so that a walk over many
databases or messages does not flood CouchDB."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather_or_cancel(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def gather_bounded(awaitables: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """:func:`gather_or_cancel`, with at most ``limit`` awaitables running at once; results in the given order."""
    gate = asyncio.Semaphore(limit)

    async def one(awaitable: Awaitable[T]) -> T:
        try:
            async with gate:
                return await awaitable
        except BaseException:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # cancelled while waiting for the gate: it never ran, and must not warn so
            raise

    return await gather_or_cancel(one(awaitable) for awaitable in awaitables)
