"""The n form: one ad-hoc task, submitted like ``execconsole submit -- COMMAND``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, Static

from console.tui.form_screen import FormScreen
from console.tui.operator import command_refusal


class ShellCheckbox(Checkbox, inherit_bindings=False):
    """The shell box: space ticks it, and enter submits the form, as in the fields.

    Textual's Checkbox toggles on enter too: ticking the box with space, then
    pressing enter to submit, unticked it again.
    """

    BINDINGS = [Binding("space", "toggle_button", "Toggle", show=False)]


class NewTaskScreen(FormScreen):
    """Command, task id, executor, priority, retries, timeout, shell; enter submits."""

    # Reached from the shell box only: the fields, the executor list and the
    # buttons handle enter themselves.
    BINDINGS = [Binding("enter", "submit_form", "Submit", show=False)]

    def __init__(self, executors: Sequence[str], default_executor: str) -> None:
        super().__init__()
        self.executors = list(executors)
        self.default_executor = default_executor

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form", id="new-task-dialog"):
            yield Static("New ad-hoc task", classes="dialog-title")
            yield Label("Command (split like a shell would; tick shell for pipes and $VARS)")
            yield Input(placeholder="sleep 30", id="command")
            with Horizontal(classes="form-row"):
                with Vertical():
                    yield Label("Task id (optional)")
                    yield Input(placeholder="default: the program's name", id="task-id")
                with Vertical():
                    yield Label("Executor")
                    yield Select(
                        [(name, name) for name in self.executors],
                        value=self.default_executor,
                        allow_blank=False,
                        id="executor",
                    )
            with Horizontal(classes="form-row"):
                with Vertical():
                    yield Label("Priority")
                    yield Input("1", id="priority", type="integer")
                with Vertical():
                    yield Label("Retries")
                    yield Input("0", id="retries", type="integer")
                with Vertical():
                    yield Label("Timeout (s)")
                    yield Input("", placeholder="none", id="timeout", type="number")
            yield ShellCheckbox("Run through the shell", id="shell")
            yield from self.form_footer()

    def on_mount(self) -> None:
        self.query_one("#command", Input).focus()

    def values(self) -> dict[str, Any]:
        """The form as keyword arguments for OperatorActions.submit_command."""

        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        timeout = text("timeout")
        return {
            "command_line": text("command"),
            "task_id": text("task-id") or None,
            "executor": str(self.query_one("#executor", Select).value),
            "priority": int(text("priority") or 1),
            "retries": int(text("retries") or 0),
            "timeout": float(timeout) if timeout else None,
            "shell": self.query_one("#shell", Checkbox).value,
        }

    def action_submit_form(self) -> None:
        self.submit()

    def submit(self) -> None:
        try:
            values = self.values()
        except ValueError as error:
            self.show_error(f"not a number: {error}")
            return
        refusal = command_refusal(values["command_line"], shell=values["shell"])
        if refusal is not None:
            # Said here at once; the shell box takes the focus when it is the remedy.
            self.show_error(refusal)
            if values["command_line"].strip():
                self.query_one("#shell", Checkbox).focus()
            return
        self.send("submit", lambda ops: ops.submit_command(**values))
