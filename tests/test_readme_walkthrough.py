"""The README, followed literally: ``./scripts/serve``, then every command of its walk-through, in its order.

The commands are taken from the README's shell blocks and run by bash with three substitutions only: the API port
(the README's 8000 is whatever port is free), the checkout's ``./scripts/`` (the commands run in a scratch folder
so that their files stay out of the checkout), and each ``X=<path from the answer>`` placeholder, filled from the
JSON the command above it printed, as a reader would copy it.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service_support import clean_env, free_port, serving

CHECKOUT = Path(__file__).resolve().parents[1]
README = CHECKOUT / "README.md"
PLACEHOLDER = re.compile(r"<([\w.]+) from the answer>")
ASSIGNMENT = re.compile(r"^(?:[A-Za-z_]\w*=\S*\s*)+$")


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def shell_commands(text: str) -> list[str]:
    """The commands of every ``sh`` block in ``text``: continuation lines joined, comment and blank lines left out."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            commands.append(pending + line)
            pending = ""
        assert not pending, f"a command ends with a backslash: {pending}"
    return commands


def dig(answer: Any, path: str) -> str:
    for key in path.split("."):
        assert isinstance(answer, dict) and key in answer, f"the answer has no {path}: {answer}"
        answer = answer[key]
    assert isinstance(answer, str) and answer, f"{path} is not a value: {answer}"
    return answer


@dataclass
class Reader:
    """Runs the commands as someone at a shell would, remembering the variables they set."""

    workdir: Path
    env: dict[str, str]
    port: int
    assignments: list[str] = field(default_factory=list)
    last_answer: Any = None
    answers: dict[str, Any] = field(default_factory=dict)

    def run(self, readme_command: str) -> None:
        command = literal(readme_command, self.port)
        if PLACEHOLDER.search(command):
            command = PLACEHOLDER.sub(lambda found: dig(self.last_answer, found.group(1)), command)
        assert "<" not in command.split("#")[0], f"a placeholder the README does not explain: {command}"
        if ASSIGNMENT.match(command):
            self.assignments.append(command)
            return
        script = "\n".join(["set -euo pipefail", *self.assignments, command])
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.workdir, env=self.env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if not done.stdout.strip():
            return
        try:
            answer = json.loads(done.stdout)
        except json.JSONDecodeError as error:
            raise AssertionError(f"{command} printed no JSON: {done.stdout}") from error
        if isinstance(answer, dict) and "status" in answer:
            assert answer["status"] == "success", f"{command}\n{answer}"
            assert {"auth_token", "data", "request_id", "status"} <= answer.keys(), f"not an envelope: {answer}"
        self.last_answer = answer
        self.answers[" ".join(readme_command.split("#")[0].split())] = answer

    def answer_to(self, command: str) -> Any:
        """The answer to this README command (spacing and trailing comment aside)."""
        return self.answers[" ".join(command.split())]


def literal(command: str, port: int) -> str:
    return command.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("./scripts/", f"{CHECKOUT}/scripts/")


def test_the_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    readme = README.read_text(encoding="utf-8")
    assert shell_commands(section(readme, "Set-up: two commands"))[0].startswith("./scripts/serve ")
    walkthrough = shell_commands(section(readme, "Walk-through with curl"))
    assert len(walkthrough) > 30

    port = free_port()
    env = clean_env(
        KAZOO_VM_PORT=str(port),
        KAZOO_VM_COUCH_PORT=str(free_port()),
        KAZOO_VM_DATA_DIR=str(tmp_path / "var"),
    )
    workdir = tmp_path / "terminal"
    workdir.mkdir()
    with serving([str(CHECKOUT / "scripts" / "serve")], env=env, cwd=workdir, port=port) as printed:
        assert any("./scripts/kazoo-vm accounts create" in line for line in printed), printed
        reader = Reader(workdir=workdir, env=env, port=port)
        for command in walkthrough:
            reader.run(command)

    # What the README promises of the answers, beyond their success.
    owned = reader.answer_to('curl -s -H "X-Auth-Token: $T" "$API/vmboxes?page_size=10&filter_owner_id=$U"')
    assert [box["name"] for box in owned["data"]] == ["VMBox 0"]
    new = reader.answer_to('curl -s -H "X-Auth-Token: $T" "$API/vmboxes/$B/messages?filter_folder=new&page_size=20"')
    assert sorted(row["caller_id_number"] for row in new["data"]) == ["6001", "6002"]
    assert (workdir / "message.wav").read_bytes() == (workdir / "voice.wav").read_bytes()
    with zipfile.ZipFile(workdir / "messages.zip") as archive:
        assert len(archive.namelist()) == 2
    moved = reader.answer_to(
        """curl -s -X POST -H "X-Auth-Token: $T" $API/vmboxes/$B/messages/$M2 -d '{"data":{"source_id":"'$B2'"}}'"""
    )
    assert (
        moved["data"]["metadata"]["media_id"]
        == moved["data"]["id"]
        != reader.answer_to(
            """curl -s -X POST -H "X-Auth-Token: $T" $API/vmboxes/$B/messages/$M1 -d '{"data":{"folder":"saved"}}'"""
        )["data"]["media_id"]
    )
    fetched = reader.answer_to('curl -s -H "X-Auth-Token: $T" $API/vmboxes/$B2/messages/$M3')
    assert fetched["data"]["media_id"] == moved["data"]["id"]
    # Which answers carry a revision, as the README says.
    assert "revision" in reader.answer_to('curl -s -H "X-Auth-Token: $T" $API/vmboxes/$B')
    assert "revision" in owned
    assert "revision" in new
    assert "revision" not in reader.answer_to('curl -s -H "X-Auth-Token: $T" $API/vmboxes/$B/messages/$M1')
    assert "revision" not in fetched
    api_auth = """curl -s -X PUT http://127.0.0.1:8000/v2/api_auth -d '{"data":{"api_key":"'$K'"}}'"""
    assert "revision" not in reader.answer_to(api_auth)
