"""A message's audio: which uploads are accepted, how they are stored, and where a stored recording is.

Stored audio is one attachment ``<32 hex>.<ext>`` with Kazoo's content type for the extension (mp3 ``audio/mpeg``,
wav ``audio/wav``, mp4 ``audio/mp4``; kzd_box_message, kz_mime). Any other upload is refused with a Kazoo-shaped
validation error, ``{"file": {"enum": ...}}``. Bodies sent as ``application/octet-stream`` (and base64 bodies, which
Kazoo decodes to that type) are recognised by their first bytes.

Audio may also sit in ``pvt_attachments`` behind a ``kz_att_link`` handler pointing at a media document, which is
what Kazoo's legacy migrator leaves; reading follows the link to that document's first attachment.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from kazoo_vm.domain.inputs import UploadedFile
from kazoo_vm.domain.messages.documents import CONTENT_TYPES, EXTENSIONS
from kazoo_vm.errors import ValidationFailed
from kazoo_vm.model import JsonDict, MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import NotFound

UPLOAD_TYPES = EXTENSIONS  # upload content type → stored extension
UNTYPED = frozenset({"application/octet-stream", "binary/octet-stream", ""})
ACCEPTED = sorted(set(CONTENT_TYPES.values()))


@dataclass(frozen=True)
class Upload:
    content_type: str
    extension: str
    data: bytes

    def attachment_name(self, message_id: str) -> str:
        """``<32 hex>.<ext>``: the hex part of the message id, so the name is stable for the message."""
        return f"{message_id.rsplit('-', 1)[-1]}.{self.extension}"

    def inline(self) -> JsonDict:
        """The ``_attachments`` entry that stores this audio inside the document write itself."""
        return {"content_type": self.content_type, "data": base64.b64encode(self.data).decode("ascii")}


def sniff(data: bytes) -> str | None:
    """The extension of recognisable audio bytes: MP3 (ID3 tag or frame sync), RIFF/WAVE, MP4 (``ftyp`` box)."""
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[4:8] == b"ftyp":
        return "mp4"
    return None


def refused(content_type: str) -> ValidationFailed:
    return ValidationFailed.single(
        "file",
        "enum",
        "Unsupported audio type: only MP3, WAV and MP4 recordings can be stored",
        target=ACCEPTED,
        value=content_type or "application/octet-stream",
    )


def single_upload(files: list[UploadedFile], *, required: bool) -> UploadedFile | None:
    """cb_vmboxes validate_media_binary: at most one file, and exactly one when ``required``."""
    if len(files) > 1:
        raise ValidationFailed.single("file", "maxItems", "Please provide a single media file")
    if not files:
        if required:
            raise ValidationFailed.single("file", "required", "Please provide a media file")
        return None
    return files[0]


def prepare(upload: UploadedFile) -> Upload:
    """The audio to store for an uploaded file, or the ``file.enum`` validation error."""
    declared = upload.content_type.split(";", 1)[0].strip().lower()
    extension = UPLOAD_TYPES.get(declared)
    if extension is None and declared in UNTYPED:
        extension = sniff(upload.data)
    if extension is None:
        raise refused(declared)
    return Upload(content_type=CONTENT_TYPES[extension], extension=extension, data=upload.data)


@dataclass(frozen=True)
class AudioRef:
    """Where a message's recording can be read: ``db``/``doc_id``/``name``. ``shown_name`` is the name on the
    message itself (its extension names downloads)."""

    db: str
    doc_id: str
    name: str
    shown_name: str
    content_type: str
    length: int | None

    @property
    def extension(self) -> str:
        """The name's extension with its dot, as Erlang's filename:extension/1 (``""`` when none)."""
        stem, dot, ext = self.shown_name.rpartition(".")
        return f".{ext}" if dot and stem else ""


def _object(value: Any) -> JsonDict:
    return value if isinstance(value, dict) else {}


def _pick(attachments: dict[str, Any], preferred: Any) -> str | None:
    if not attachments:
        return None
    return preferred if isinstance(preferred, str) and preferred in attachments else next(iter(attachments))


def _length(stub: Any) -> int | None:
    value = stub.get("length") if isinstance(stub, dict) else None
    return value if isinstance(value, int) else None


def _content_type(stub: Any) -> str | None:
    value = stub.get("content_type") if isinstance(stub, dict) else None
    return value if isinstance(value, str) and value else None


async def locate(store: CouchStore, db: str, doc: MessageDoc) -> AudioRef | None:
    """The recording of message ``doc`` (stored in ``db``), or None when it has none that can be read."""
    real = _object(doc.get("_attachments"))
    name = _pick(real, doc.get("media_filename"))
    if name is not None:
        stub = real[name]
        return AudioRef(db, doc["_id"], name, name, _content_type(stub) or "application/octet-stream", _length(stub))
    linked = _object(doc.get("pvt_attachments"))
    name = _pick(linked, doc.get("media_filename"))
    if name is None:
        return None
    entry = linked[name]
    handler = entry.get("handler") if isinstance(entry, dict) else None
    link = handler.get("kz_att_link") if isinstance(handler, dict) else None
    if not isinstance(link, dict) or not link.get("att_dbname") or not link.get("att_docid"):
        return None
    media_db = naming.decode_db(str(link["att_dbname"]))
    try:
        media = await store.get_doc(media_db, str(link["att_docid"]))
    except NotFound:
        return None
    media_attachments = _object(media.get("_attachments"))
    media_name = _pick(media_attachments, None)
    if media_name is None:
        return None
    stub = media_attachments[media_name]
    content_type = _content_type(entry) or _content_type(stub) or "application/octet-stream"
    return AudioRef(media_db, media["_id"], media_name, name, content_type, _length(stub))


async def read_inline(store: CouchStore, ref: AudioRef) -> JsonDict:
    """The recording as an inline ``_attachments`` entry, so a copy is written with its audio in one request."""
    data = await store.read_attachment(ref.db, ref.doc_id, ref.name)
    return {"content_type": ref.content_type, "data": base64.b64encode(data).decode("ascii")}
