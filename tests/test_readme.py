"""The README's Quickstart is what CI runs: the two commands must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_quickstart_is_exactly_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), "each command is one copy-paste line"
    assert "streamlit run app.py" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quickstart_commands()[1] in ci


def test_requirements_pin_torch_and_duckdb_2():
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", requirements, flags=re.M)
    assert re.search(r"^duckdb>=2,<3$", requirements, flags=re.M)
