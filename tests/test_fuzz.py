"""Fuzzing every operation of the OpenAPI description (schemathesis): generated requests (valid by the description)
and mutated ones (invalid by it), with the account's real token and with none.

Every answer must be a non-5xx with a documented status and media type, whose JSON is Kazoo's envelope and matches
its documented schema; no ``data`` may carry CouchDB's ``_id``/``_rev`` or a ``pvt_*`` key, and no answer may carry
CouchDB's own error text. Generation is derandomised (the same cases every run) and bounded per operation.

schemathesis sends its requests synchronously, so the fuzzing runs in a worker thread while the event loop keeps
serving the app on the test server's real port.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from aiohttp.test_utils import TestClient
from helpers import Api, create_box
from hypothesis import HealthCheck, Phase, given, settings
from message_support import new_message
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Cases per operation for each of (valid, mutated) x (token, no token).
EXAMPLES = 10
FORBIDDEN_DATA_KEYS = ("_id", "_rev")
# Phrases of CouchDB's (and the dev server's) own error answers that must never reach a client.
COUCH_ERROR_TEXT = (
    "document update conflict",
    "database does not exist",
    "name or password is incorrect",
    "doc_validation",
    "missing_stub",
    "file_exists",
    "illegal_database_name",
    '"reason":',
    "aiocouch",
    "traceback",
)


def forbidden_keys(value: Any, path: str = "data") -> Iterator[str]:
    """Where CouchDB's internals appear in ``value``: ``_id``, ``_rev`` and ``pvt_*`` keys at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in FORBIDDEN_DATA_KEYS or key.startswith("pvt_"):
                yield f"{path}.{key}"
            yield from forbidden_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from forbidden_keys(item, f"{path}[{index}]")


def test_forbidden_keys_are_found_at_any_depth() -> None:
    leaky = {"id": "x", "items": [{"_rev": "1-a"}], "nested": {"pvt_type": "vmbox"}, "owner_id": "y"}
    assert sorted(forbidden_keys(leaky)) == ["data.items[0]._rev", "data.nested.pvt_type"]
    assert list(forbidden_keys({"id": "x", "messages": [{"media_id": "m"}]})) == []


def envelope_problems(status: int, content_type: str, body: bytes, *, kazoo: bool = True) -> list[str]:
    """What is wrong with an answer beyond its documented schema (which schemathesis checks). ``kazoo``: the
    operation answers in Kazoo's envelope (the service's own routes, health and the description, do not)."""
    problems: list[str] = []
    if status >= 500:
        problems.append(f"server error {status}")
    if content_type not in ("application/json", "application/javascript"):
        return problems  # audio, ZIP, the docs page, metrics: no envelope, and no CouchDB answer in them
    text = body.decode("utf-8", "replace").lower()
    problems += [f"CouchDB error text {phrase!r}" for phrase in COUCH_ERROR_TEXT if phrase in text]
    if content_type != "application/json" or not kazoo:
        return problems
    try:
        envelope = json.loads(body)
    except ValueError:
        return [*problems, "not JSON"]
    if not isinstance(envelope, dict) or envelope.get("status") not in ("success", "error"):
        return [*problems, "not in Kazoo's envelope"]
    if "request_id" not in envelope:
        problems.append("no request_id in the envelope")
    problems += [f"CouchDB key {where}" for where in forbidden_keys(envelope.get("data"))]
    return problems


def test_the_answer_checks_flag_5xx_leaks_couch_text_and_answers_outside_the_envelope() -> None:
    clean = b'{"status": "success", "request_id": "r", "data": {"id": "x"}}'
    assert envelope_problems(200, "application/json", clean) == []
    leaky = b'{"status": "success", "request_id": "r", "data": [{"id": "x", "pvt_type": "vmbox"}]}'
    assert envelope_problems(200, "application/json", leaky) == ["CouchDB key data[0].pvt_type"]
    couch = (
        b'{"status": "error", "request_id": "r", "data": {"error": "conflict", "reason": "Document update conflict."}}'
    )
    assert len(envelope_problems(409, "application/json", couch)) == 2
    assert envelope_problems(502, "application/json", clean) == ["server error 502"]
    assert envelope_problems(200, "application/json", b'{"ok": true}') == ["not in Kazoo's envelope"]
    assert envelope_problems(200, "application/json", b'{"ok": true}', kazoo=False) == []
    assert envelope_problems(200, "audio/mpeg", b"ID3\x00") == []


@dataclass
class Findings:
    failures: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, label: str, problem: str) -> None:
        self.failures.setdefault(f"{label}: {problem.splitlines()[0][:200]}", problem[:2000])


@dataclass(frozen=True)
class Target:
    """Where the fuzzing is pointed: the server, and a real account (its token), box and message."""

    base_url: str
    account_id: str
    token: str
    box_id: str
    message_id: str


def fuzz(description: dict[str, Any], target: Target) -> Findings:
    """Send every operation's generated and mutated cases, with and without a token; collect what is wrong."""
    schema = schemathesis.openapi.from_dict(description)
    findings = Findings()
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        names = {param.name for param in operation.path_parameters}
        kazoo = description["paths"][operation.path][operation.method.lower()]["tags"] != ["service"]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for with_token in (True, False):
                # With a token, the account is the token's (and, for valid cases, the box and message real ones)
                # so that cases get past the authorisation and reach the handlers and the stored documents.
                # Without one, valid cases name the real account (a 401) and mutated ones any account (a 404).
                fixed: dict[str, Any] = {}
                if (with_token or mode is GenerationMode.POSITIVE) and "account_id" in names:
                    fixed["account_id"] = target.account_id
                if with_token and mode is GenerationMode.POSITIVE:
                    real = {"box_id": target.box_id, "message_id": target.message_id}
                    fixed.update({name: value for name, value in real.items() if name in names})
                headers = {"X-Auth-Token": target.token} if with_token else {}
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)
                label = f"{operation.label} [{mode.value}, {'token' if with_token else 'no token'}]"
                run_cases(strategy, label, headers, target.base_url, checks, findings, kazoo=kazoo)
    return findings


def run_cases(
    strategy: Any,
    label: str,
    headers: dict[str, str],
    base_url: str,
    checks: list[Callable[..., Any]],
    findings: Findings,
    *,
    kazoo: bool,
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Case[Any]) -> None:
        if not headers:
            # Without a token means without one anywhere: the generator may add auth_token to the query.
            if case.query:
                case.query.pop("auth_token", None)
            if case.headers:
                case.headers.pop("X-Auth-Token", None)
        response = case.call(base_url=base_url, headers=headers, timeout=60)
        findings.requests += 1
        findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
        content_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
        where = f"{label} {case.method} {case.formatted_path} -> {response.status_code}"
        for problem in envelope_problems(response.status_code, content_type, response.content or b"", kazoo=kazoo):
            findings.add(where, f"{problem}\n{case.as_curl_command(headers=headers)}\n{response.text[:500]}")
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (AssertionError, BaseExceptionGroup) as failed:  # one check's failure, or a group of them
            findings.add(where, f"{failed}\n{case.as_curl_command(headers=headers)}")

    send()


async def test_no_generated_or_mutated_request_gets_a_5xx_a_leak_or_an_undocumented_answer(
    client: TestClient[Any, Any], api: Api
) -> None:
    box = await create_box(api, name="Fuzzed", mailbox="5100")
    message = await new_message(api, box["id"], caller_id_name="Fuzzed")
    description_response = await client.get("/v2/openapi.json")
    description: dict[str, Any] = await description_response.json()
    base_url = str(client.make_url("/")).rstrip("/")
    target = Target(base_url, api.account.id, api.account.token, box["id"], message["media_id"])
    findings = await asyncio.to_thread(fuzz, description, target)
    summary = "\n".join(sorted(findings.failures))
    details = "\n\n".join(list(findings.failures.values())[:10])
    assert not findings.failures, f"{len(findings.failures)} problems:\n{summary}\n\nThe first in full:\n{details}"
    # The fuzzing reached the handlers: some cases succeeded and some were refused for their content.
    assert findings.requests >= 1500 and findings.statuses.get(200, 0) > 0, findings.statuses
    assert findings.statuses.get(400, 0) > 0 and findings.statuses.get(401, 0) > 0, findings.statuses
