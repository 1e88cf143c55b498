"""The runner against real subprocesses: capture, echo, and errors that carry everything."""

from __future__ import annotations

import sys

import pytest

from dockwork import runner
from dockwork.errors import CommandError


def test_captures_output() -> None:
    result = runner.run([sys.executable, "-c", "print('hello')"])
    assert result.ok
    assert result.stdout == "hello\n"


def test_failure_carries_argv_code_and_output() -> None:
    argv = [
        sys.executable,
        "-c",
        "import sys; print('out'); sys.stderr.write('boom\\n'); sys.exit(7)",
    ]
    with pytest.raises(CommandError) as excinfo:
        runner.run(argv)
    err = excinfo.value
    assert err.argv == argv
    assert err.returncode == 7
    assert err.exit_code == 7
    assert err.stdout == "out\n"
    assert err.stderr == "boom\n"
    assert "failed with exit code 7" in err.message
    assert "boom" in err.message


def test_unchecked_failure_is_returned() -> None:
    result = runner.run([sys.executable, "-c", "raise SystemExit(3)"], check=False)
    assert (result.ok, result.returncode) == (False, 3)


def test_echo_is_the_exact_shell_quoted_command(capsys: pytest.CaptureFixture[str]) -> None:
    runner.run([sys.executable, "-c", "pass", "a b", "it's"], show=True)
    err = capsys.readouterr().err
    assert err == f"$ {sys.executable} -c pass 'a b' 'it'\"'\"'s'\n"


def test_missing_program_says_what_to_install() -> None:
    with pytest.raises(runner.ProgramNotFoundError, match="`no-such-program-x` was not found"):
        runner.run(["no-such-program-x"])


def test_no_shell_interpretation() -> None:
    result = runner.run(["echo", "$HOME; rm -rf /"])
    assert result.stdout == "$HOME; rm -rf /\n"
