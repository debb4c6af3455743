"""The README stays true: its assumptions table matches the specs, and CI runs its test command."""

from __future__ import annotations

from sandbox.assumptions import BEGIN, END, markdown
from sandbox.settings import ROOT, SPEC_DIR

README = (ROOT / "README.md").read_text()
TEST_COMMAND = "python3 -m pip install -e '.[test]' && python3 -m pytest"


def test_assumptions_table_matches_the_specs() -> None:
    start, end = README.index(BEGIN), README.index(END) + len(END)
    assert README[start:end] == markdown(SPEC_DIR), "run `sandbox assumptions` and paste it"


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    assert TEST_COMMAND in README
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()


def test_quickstart_serve_command_is_documented() -> None:
    assert "python3 -m pip install -e . && sandbox serve" in README
