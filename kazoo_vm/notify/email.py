"""Voicemail-to-email (Kazoo's teletype ``voicemail_to_email``), over SMTP with aiosmtplib, and the after-notify
actions, which run only once the SMTP server accepted the message (Kazoo runs them even when the email failed).

Recipients, as teletype_voicemail_to_email finds them: the box owner's ``email`` when the owner (a user document
of the account) has ``vm_to_email_enabled`` (Kazoo's user schema: default true), plus the box's
``notify_email_addresses``. The recording is attached when the box has ``include_message_on_notify`` (default
true), under the name the raw download has. Subject and bodies come from ``templates/voicemail_to_email.*``
(``string.Template`` placeholders), each of which ``KAZOO_VM_TEMPLATES_DIR`` may override.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import unquote, urlsplit

import aiosmtplib

from kazoo_vm.config import Settings
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages.documents import local_time
from kazoo_vm.domain.messages.downloads import single_download
from kazoo_vm.errors import KazooError
from kazoo_vm.model import JsonDict, MessageDoc, MessageMetadata
from kazoo_vm.storage.errors import NotFound

TEMPLATE = "voicemail_to_email"


class EmailFailed(Exception):
    """The SMTP server did not accept the message (or could not be reached)."""


@dataclass(frozen=True)
class Composed:
    message: EmailMessage
    recipients: list[str]


def template(settings: Settings, part: str) -> Template:
    """The operator's template from ``templates_dir`` when there is one, else the bundled one."""
    name = f"{TEMPLATE}.{part}"
    if settings.templates_dir is not None:
        custom = Path(settings.templates_dir) / name
        if custom.is_file():
            return Template(custom.read_text(encoding="utf-8"))
    return Template(resources.files("kazoo_vm.notify").joinpath("templates", name).read_text(encoding="utf-8"))


async def recipients(scope: Scope, box: JsonDict) -> list[str]:
    found: list[str] = []
    owner_id = box.get("owner_id")
    if isinstance(owner_id, str) and owner_id:
        try:
            owner = await scope.store.get_doc(scope.account.db, owner_id)
        except NotFound:
            owner = {}
        live = owner.get("pvt_type") == "user" and not owner.get("pvt_deleted")
        if live and owner.get("vm_to_email_enabled", True) is not False and isinstance(owner.get("email"), str):
            found.append(owner["email"])
    for address in box.get("notify_email_addresses") or []:
        if isinstance(address, str) and address and address not in found:
            found.append(address)
    return found


def _name_number(name: object, number: object) -> str:
    name_text, number_text = str(name or ""), str(number or "")
    if name_text and number_text and name_text != number_text:
        return f"{name_text} ({number_text})"
    return name_text or number_text or "unknown"


def _length(milliseconds: object) -> str:
    seconds = int(milliseconds) // 1000 if isinstance(milliseconds, int) else 0
    return f"{seconds // 60}:{seconds % 60:02d}"


def fields(scope: Scope, box: JsonDict, message: MessageDoc, attached: bool) -> dict[str, str]:
    metadata: MessageMetadata = message.get("metadata") or {}
    moment, _ = local_time(
        int(metadata.get("timestamp") or message.get("utc_seconds") or 0),
        box.get("timezone"),
        scope.settings.default_timezone,
    )
    return {
        "caller_id_name_number": _name_number(metadata.get("caller_id_name"), metadata.get("caller_id_number")),
        "callee_id_name_number": _name_number(box.get("name"), metadata.get("to")),
        "date_called": f"{moment:%A, %B %-d, %Y at %H:%M %Z}".strip(),
        "length": _length(metadata.get("length")),
        "vmbox_name": str(box.get("name") or ""),
        "vmbox_number": str(box.get("mailbox") or ""),
        "account_name": scope.account.name,
        "attachment_note": "The message is attached." if attached else "",
    }


async def compose(scope: Scope, box: JsonDict, message: MessageDoc, to: list[str]) -> EmailMessage:
    include = box.get("include_message_on_notify", True) is not False
    audio: tuple[bytes, str, str] | None = None
    if include:
        try:
            async with single_download(scope, box["_id"], message["_id"], whole=True) as download:
                chunks: list[bytes] = []
                async with download.open(scope) as body:
                    async for chunk in body.chunks:
                        chunks.append(chunk)
                audio = (b"".join(chunks), download.audio.content_type, download.file_name)
        except KazooError:
            audio = None  # a message without audio is announced without attachment
    values = fields(scope, box, message, attached=audio is not None)
    settings = scope.settings
    mail = EmailMessage()
    mail["Subject"] = template(settings, "subject").safe_substitute(values).strip()
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    mail.set_content(template(settings, "text").safe_substitute(values))
    escaped = {key: html.escape(value) for key, value in values.items()}
    mail.add_alternative(template(settings, "html").safe_substitute(escaped), subtype="html")
    if audio is not None:
        data, content_type, file_name = audio
        main, _, sub = content_type.partition("/")
        mail.add_attachment(data, maintype=main or "audio", subtype=sub or "mpeg", filename=file_name)
    return mail


async def send(settings: Settings, mail: EmailMessage, to: list[str]) -> None:
    """Hand the message to the SMTP server of ``smtp_url``; raises :class:`EmailFailed` unless it accepted it."""
    assert settings.smtp_url is not None
    url = urlsplit(settings.smtp_url)
    implicit_tls = url.scheme == "smtps"
    try:
        await aiosmtplib.send(
            mail,
            sender=settings.smtp_from,
            recipients=to,
            hostname=url.hostname,
            port=url.port or (465 if implicit_tls else 587),
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            use_tls=implicit_tls,
            # smtp://: STARTTLS whenever the server offers it.
            start_tls=None if not implicit_tls else False,
            timeout=30,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise EmailFailed(f"{type(exc).__name__}: {exc}") from exc
