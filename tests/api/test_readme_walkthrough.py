"""README's curl walk-through, run as written (its ```sh block, through bash and
curl) against a real ``overlord serve``, pasted twice: every command prints what
its ``# → `` lines show, ``…`` standing for what differs from run to run."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import ServeProcess, serve_process

README = Path(__file__).resolve().parents[2] / "README.md"
OUTPUT = "# → "
MARKER = "@@walk-through step done@@"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def walkthrough_steps() -> list[Step]:
    """The commands of README's walk-through block, each with the output lines
    shown under it (none for a command whose output the README does not show)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Walk-through with curl", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    steps: list[Step] = []
    pending: list[str] = []
    for line in block.splitlines():
        if line.startswith(OUTPUT):
            steps[-1].expected.append(line.removeprefix(OUTPUT))
        elif pending or (line.strip() and not line.startswith("#")):
            pending.append(line)
            if not line.endswith("\\"):
                steps.append(Step("\n".join(pending)))
                pending = []
    assert not pending, pending
    return steps


def _pattern(lines: list[str]) -> re.Pattern[str]:
    return re.compile(
        ".*?".join(re.escape(part) for part in "\n".join(lines).split("…")),
        re.DOTALL,
    )


def paste(steps: list[Step], server: ServeProcess, workdir: Path) -> list[str]:
    """Run the block in one bash (its variables carry over), as a paste would,
    and return each command's output."""
    script = "".join(
        step.command.replace("localhost:8090", f"127.0.0.1:{server.port}")
        + f"\nprintf '\\n{MARKER}\\n'\n"
        for step in steps
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    outputs = result.stdout.split(f"\n{MARKER}\n")
    assert outputs[-1] == ""
    return outputs[:-1]


def test_readme_walkthrough_block_has_outputs_for_every_request() -> None:
    steps = walkthrough_steps()

    assert len(steps) == 12
    assert all(step.expected for step in steps[1:]), [
        step.command for step in steps if not step.expected
    ]
    # The shutdown it promises shows as FAILED.
    assert any('"statusCode":"FAILED"' in "".join(s.expected) for s in steps)


def test_readme_walkthrough_pasted_twice_prints_what_it_shows(
    database_url: str, tmp_path: Path
) -> None:
    assert shutil.which("curl"), "the walk-through needs curl"
    steps = walkthrough_steps()
    with serve_process(database_url, tmp_path, "--workers", "1") as server:
        server.wait_healthy()

        first = paste(steps, server, tmp_path)
        second = paste(steps, server, tmp_path)

    for outputs in (first, second):
        for step, output in zip(steps, outputs, strict=True):
            if step.expected:
                assert _pattern(step.expected).fullmatch(output.rstrip("\n")), (
                    f"{step.command}\nprinted:\n{output}\nREADME shows:\n"
                    + "\n".join(step.expected)
                )
    # Fresh ids on the second paste: nothing collided.
    assert first[1] != second[1]
    assert first[1].startswith("noop_")
