"""The n form: what it refuses, in its own terms, before anything is stored.

Split into words without a shell, ``echo hello | tr a-z A-Z > out.txt`` would
print its words and write no file: the form says to tick "Run through the
shell" instead. On a real console (its engine in a child process, the real
LocalExecutor, a real SQLite store) under Textual's Pilot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Checkbox, Input, Static

from console.tui.new_task_screen import NewTaskScreen
from console.tui.operator import shell_syntax
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def form_error(c: Console) -> str:
    return str(c.app.screen.query_one("#form-error", Static).render())


async def open_form(c: Console, pilot: Any, command: str) -> NewTaskScreen:
    await pilot.press("n")
    await c.wait(pilot, lambda: isinstance(c.app.screen, NewTaskScreen), "form shown")
    form = c.app.screen
    assert isinstance(form, NewTaskScreen)
    form.query_one("#command", Input).value = command  # typing is slow
    return form


def test_a_pipeline_without_the_shell_box_is_refused_and_runs_once_it_is_ticked(
    console: ConsoleFactory, tmp_path: Path
) -> None:
    c = console()
    out = tmp_path / "out.txt"

    async def scenario(pilot: Any) -> None:
        form = await open_form(c, pilot, f"echo hello | tr a-z A-Z > {out}")
        await pilot.press("enter")
        await c.wait(pilot, lambda: "shell syntax (|)" in form_error(c), "refused")
        assert 'tick "Run through the shell"' in form_error(c)
        assert c.app.screen is form
        assert c.store.list_tasks(dag_id="adhoc") == []
        shell = form.query_one("#shell", Checkbox)
        assert shell.has_focus  # the remedy is one key away
        await pilot.press("space")
        assert shell.value
        await pilot.press("enter")  # submits, as in the fields: the box stays ticked
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "form closed")
        (task,) = c.store.list_tasks(dag_id="adhoc")
        await c.wait(pilot, lambda: c.state(task.key) == "success", "ran")

    c.run(scenario)
    (record,) = c.store.list_tasks(dag_id="adhoc")
    assert record.shell
    assert out.read_text() == "HELLO\n"


def test_an_empty_command_is_refused_in_the_forms_terms(console: ConsoleFactory) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        form = await open_form(c, pilot, "   ")
        await pilot.press("enter")
        await c.wait(pilot, lambda: "the command is empty" in form_error(c), "refused")
        assert form_error(c) == (
            "the command is empty: type the program and its arguments, e.g. sleep 30"
        )
        assert c.app.screen is form
        assert form.query_one("#command", Input).has_focus

    c.run(scenario)
    assert c.store.list_tasks(dag_id="adhoc") == []


def test_quoted_shell_characters_are_plain_words_without_the_shell(
    console: ConsoleFactory,
) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        await open_form(c, pilot, "echo 'a|b' \"c > d\"")
        await pilot.press("enter")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "submitted")

    c.run(scenario)
    (record,) = c.store.list_tasks(dag_id="adhoc")
    assert record.command == ["echo", "a|b", "c > d"]
    assert not record.shell


@pytest.mark.parametrize(
    ("command", "found"),
    [
        ("echo hello | tr a-z A-Z > /tmp/out.txt", "|"),
        ("make && make install", "&&"),
        ("test -f x || touch x", "||"),
        ("cd /tmp; ls", ";"),
        ("sleep 5 &", "&"),
        ("sort < in.txt", "<"),
        ("cmd 2>&1", ">&"),
        ("echo $HOME", "$HOME"),
        ('echo "$(date)"', "$("),
        ("echo ${USER}", "${"),
        ("echo `date`", "`"),
        ("echo 'a|b' $(x)", "$("),
    ],
)
def test_shell_syntax_is_found_outside_single_quotes(command: str, found: str) -> None:
    assert shell_syntax(command) == found


@pytest.mark.parametrize(
    "command",
    [
        "sleep 30",
        "echo 'a | b > c'",
        'echo "a | b; c"',
        "echo '$HOME'",
        "echo a\\|b",
        "find . -name *.py",  # a glob means what it says without a shell
        "python3 -c 'print(1)'",
    ],
)
def test_plain_words_are_not_shell_syntax(command: str) -> None:
    assert shell_syntax(command) is None
