"""Email for the voicemail events Kazoo's teletype emails, over SMTP with aiosmtplib, and the after-notify
actions, which run only once the SMTP server accepted the message (Kazoo runs them even when the email failed).

Teletype 4.3 has three voicemail templates; ``voicemail_saved`` has none, so it is never emailed:

* ``voicemail_to_email`` for ``voicemail_new``: the box owner's ``email`` when the owner (a user document of the
  account) has ``vm_to_email_enabled`` (Kazoo's user schema: default true), plus the box's
  ``notify_email_addresses``; the recording attached when the box has ``include_message_on_notify`` (default
  true), under the name the raw download has; the transcription, when the message has one and the box has
  ``include_transcription_on_notify`` (default true);
* ``voicemail_full`` for ``voicemail_full``: the owner's ``email`` (teletype_voicemail_full does not ask the owner
  whether they want voicemail emails) plus the box's addresses;
* ``voicemail_deleted`` for ``voicemail_deleted``, only with ``email_voicemail_deleted`` (Kazoo ships it switched
  off): recipients, attachment and transcription as for a new message, and the reason.

Subjects and bodies come from ``templates/<template>.{subject,text,html}`` (``string.Template`` placeholders),
each of which ``KAZOO_VM_TEMPLATES_DIR`` may override.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import unquote, urlsplit

import aiosmtplib

from kazoo_vm.config import Settings
from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages import audio
from kazoo_vm.domain.messages.documents import local_time
from kazoo_vm.domain.messages.downloads import media_file_name
from kazoo_vm.model import BoxDoc, JsonDict, MessageDoc, MessageMetadata
from kazoo_vm.notify import payloads
from kazoo_vm.storage.errors import NotFound

# The teletype template of each notification that is emailed.
TEMPLATES = {
    payloads.VOICEMAIL_NEW: "voicemail_to_email",
    payloads.VOICEMAIL_FULL: "voicemail_full",
    payloads.VOICEMAIL_DELETED: "voicemail_deleted",
}
# teletype_voicemail_deleted render_vm_delete_reason.
REASONS = {
    payloads.REASON_API: "due to crossbar action (webhook)",
    payloads.REASON_AFTER_NOTIFY: "due to 'Deleted after notify'",
}


class EmailFailed(Exception):
    """The SMTP server did not accept the message (or could not be reached)."""


def emailed(settings: Settings, event: str) -> bool:
    """Whether ``event`` is emailed at all (an SMTP server configured, a template for it, switched on)."""
    if not settings.smtp_url or event not in TEMPLATES:
        return False
    return settings.email_voicemail_deleted or event != payloads.VOICEMAIL_DELETED


def template(settings: Settings, name: str, part: str) -> Template:
    """The operator's template from ``templates_dir`` when there is one, else the bundled one."""
    file_name = f"{name}.{part}"
    if settings.templates_dir is not None:
        custom = Path(settings.templates_dir) / file_name
        if custom.is_file():
            return Template(custom.read_text(encoding="utf-8"))
    return Template(resources.files("kazoo_vm.notify").joinpath("templates", file_name).read_text(encoding="utf-8"))


async def recipients(scope: Scope, box: BoxDoc, event: str = payloads.VOICEMAIL_NEW) -> list[str]:
    found: list[str] = []
    owner_id = box.get("owner_id")
    if isinstance(owner_id, str) and owner_id:
        try:
            owner = await scope.store.get_doc(scope.account.db, owner_id)
        except NotFound:
            owner = {}
        live = owner.get("pvt_type") == "user" and not owner.get("pvt_deleted")
        wants = event == payloads.VOICEMAIL_FULL or owner.get("vm_to_email_enabled", True) is not False
        if live and wants and isinstance(owner.get("email"), str):
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


def transcription(box: BoxDoc, message: MessageDoc) -> str | None:
    """The message's transcription text when the box wants it in emails: Kazoo keeps the ASR answer at the top of
    the document (``transcription``: ``{"result", "text"}``), the API shows it in the metadata; either may hold
    it (teletype get_transcription takes a text or an object's ``text``)."""
    if box.get("include_transcription_on_notify", True) is False:
        return None
    metadata = message.get("metadata")
    for found in (message.get("transcription"), metadata.get("transcription") if isinstance(metadata, dict) else None):
        text = found.get("text") if isinstance(found, dict) else found
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def _box_fields(scope: Scope, box: BoxDoc) -> dict[str, str]:
    return {
        "vmbox_name": str(box.get("name") or ""),
        "vmbox_number": str(box.get("mailbox") or ""),
        "account_name": scope.account.name,
        "account_id": scope.account.id,
    }


def message_fields(scope: Scope, box: BoxDoc, message: MessageDoc, timezone: str) -> dict[str, str]:
    metadata: MessageMetadata = message.get("metadata") or {}
    moment, _ = local_time(
        int(metadata.get("timestamp") or message.get("utc_seconds") or 0), timezone, scope.settings.default_timezone
    )
    return {
        **_box_fields(scope, box),
        "caller_id_name_number": _name_number(metadata.get("caller_id_name"), metadata.get("caller_id_number")),
        "callee_id_name_number": _name_number(box.get("name"), metadata.get("to")),
        "date_called": f"{moment:%A, %B %-d, %Y at %H:%M %Z}".strip(),
        "length": _length(metadata.get("length")),
        "transcription": transcription(box, message) or "",
    }


async def _recording(scope: Scope, message: MessageDoc, timezone: str) -> tuple[bytes, str, str] | None:
    """The message's audio, its type and the raw download's file name; None without readable audio."""
    ref = await audio.locate(scope.store, scope.db(message["_id"]), message)
    if ref is None:
        return None
    try:
        data = await scope.store.read_attachment(ref.db, ref.doc_id, ref.name)
    except NotFound:
        return None
    metadata: MessageMetadata = message.get("metadata") or {}
    timestamp = metadata.get("timestamp")
    if not isinstance(timestamp, int):
        timestamp = message.get("utc_seconds")
    return data, ref.content_type, media_file_name(metadata.get("caller_id_number"), timestamp, ref.extension, timezone)


def _sections(values: dict[str, str], attached: bool) -> tuple[dict[str, str], dict[str, str]]:
    """The values for the text and the HTML bodies: escaped for HTML, with the optional sections rendered for each
    (teletype's ``{% if voicemail.transcription %}`` block)."""
    note = "The message is attached." if attached else ""
    said = values.get("transcription", "")
    text = {**values, "attachment_note": note}
    text["transcription_section"] = f"\n=== Transcription ===\n\n{said}\n" if said else ""
    markup = {key: html.escape(value) for key, value in text.items()}
    markup["transcription_section"] = f"<h3>Transcription</h3>\n<p>{html.escape(said)}</p>" if said else ""
    return text, markup


async def compose(
    scope: Scope, event: str, box: BoxDoc, message: MessageDoc | None, to: list[str], payload: JsonDict
) -> EmailMessage:
    """The email of ``event`` (one of :data:`TEMPLATES`) about ``message`` (None for a full box)."""
    settings = scope.settings
    recording = None
    if message is None:
        values = {
            **_box_fields(scope, box),
            "message_count": str(payload.get("Message-Count", "")),
            "max_messages": str(payload.get("Max-Message-Count", "")),
        }
    else:
        timezone = await box_timezone(scope, box)
        values = message_fields(scope, box, message, timezone)
        if event == payloads.VOICEMAIL_DELETED:
            reason = str(payload.get("Reason") or payloads.REASON_API)
            values["reason"] = REASONS.get(reason, reason)
        if box.get("include_message_on_notify", True) is not False:
            recording = await _recording(scope, message, timezone)
    text, markup = _sections(values, attached=recording is not None)
    name = TEMPLATES[event]
    mail = EmailMessage()
    mail["Subject"] = template(settings, name, "subject").safe_substitute(text).strip()
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    mail.set_content(template(settings, name, "text").safe_substitute(text))
    mail.add_alternative(template(settings, name, "html").safe_substitute(markup), subtype="html")
    if recording is not None:
        data, content_type, file_name = recording
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
