"""Running coroutines side by side the way a crash would end them: on the first failure the others are cancelled
(``asyncio.gather`` would leave them writing in the background) and that failure is raised as itself (a
``TaskGroup`` would wrap it in an ``ExceptionGroup``, which the callers' ``except StorageError`` would miss)."""

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
