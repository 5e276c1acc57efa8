"""Streaming a ZIP of several recordings without holding them in memory.

zipstream-ng builds the archive lazily from iterables but pulls its input synchronously, while our audio arrives
as async chunks from CouchDB. :func:`zip_chunks` bridges the two without threads: each entry is a small feed that
zipstream-ng iterates; when a feed has no chunk ready it hands zipstream-ng an empty one (which adds nothing to
the archive) and raises its hand, and the async driver fetches that feed's next chunk before asking zipstream-ng
for more. Memory stays at one chunk whatever the number or size of the recordings.

Kazoo 4.3 wrote every file to ``/tmp`` and zipped them there (cb_vmboxes load_messages_binaries).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from zipstream import ZIP_STORED, ZipStream

ChunkSource = Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class ZipEntry:
    name: str
    size: int | None
    open: ChunkSource  # called once, when the archive reaches this entry


class _Feed:
    """One entry's data as zipstream-ng sees it: a synchronous iterator the async driver keeps supplied."""

    def __init__(self, entry: ZipEntry, hungry: list[_Feed]) -> None:
        self.entry = entry
        self.hungry = hungry
        self.chunk: bytes | None = None
        self.done = False
        self.source: AsyncIterator[bytes] | None = None

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> bytes:
        if self.chunk is not None:
            chunk, self.chunk = self.chunk, None
            return chunk
        if self.done:
            raise StopIteration
        self.hungry.append(self)
        return b""

    async def refill(self) -> None:
        if self.source is None:
            self.source = self.entry.open()
        try:
            chunk = await anext(self.source)
        except StopAsyncIteration:
            self.done = True
            return
        self.chunk = chunk if chunk else b""


def unique_names(names: list[str]) -> list[str]:
    """Archive names without duplicates: a repeated ``a.mp3`` becomes ``a_2.mp3``, ``a_3.mp3``..."""
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, number = name, 1
        stem, dot, ext = name.rpartition(".")
        while candidate in seen:
            number += 1
            candidate = f"{stem}_{number}.{ext}" if dot and stem else f"{name}_{number}"
        seen.add(candidate)
        result.append(candidate)
    return result


async def zip_chunks(entries: list[ZipEntry]) -> AsyncIterator[bytes]:
    """The archive's bytes, entry after entry (stored, not compressed: recordings are compressed already)."""
    archive = ZipStream(compress_type=ZIP_STORED)
    hungry: list[_Feed] = []
    feeds = [_Feed(entry, hungry) for entry in entries]
    for feed in feeds:
        archive.add(feed, feed.entry.name, size=feed.entry.size)
    try:
        for piece in archive:
            if piece:
                yield piece
            while hungry:
                await hungry.pop().refill()
    finally:
        for feed in feeds:
            closer = getattr(feed.source, "aclose", None)
            if closer is not None:
                await closer()
