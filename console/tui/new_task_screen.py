"""The n form: one ad-hoc task, submitted like ``execconsole submit -- COMMAND``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from console.tui.messages import ActionFinished


class NewTaskScreen(ModalScreen[str | None]):
    """Command, task id, executor, priority, retries, timeout, shell; enter submits."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, executors: Sequence[str], default_executor: str) -> None:
        super().__init__(classes="dialog-screen")
        self.executors = list(executors)
        self.default_executor = default_executor

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form", id="new-task-dialog"):
            yield Static("New ad-hoc task", classes="dialog-title")
            yield Label("Command (split like a shell would; tick shell for pipes and $VARS)")
            yield Input(placeholder="sleep 30", id="command")
            with Horizontal(classes="form-row"):
                with Vertical():
                    yield Label("Task id (default: the program's name)")
                    yield Input(placeholder="sleep", id="task-id")
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
                    yield Label("Timeout (s, empty: none)")
                    yield Input("", id="timeout", type="number")
            yield Checkbox("Run through the shell", id="shell")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Submit (enter)", id="submit", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

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

    def submit(self) -> None:
        try:
            values = self.values()
        except ValueError as error:
            self.show_error(f"not a number: {error}")
            return
        self.app.run_operator(  # type: ignore[attr-defined]
            "submit", lambda ops: ops.submit_command(**values), reply_to=self
        )

    def show_error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(Text(message))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.submit()
        else:
            self.dismiss(None)

    def on_action_finished(self, message: ActionFinished) -> None:
        message.stop()
        if message.ok:
            self.dismiss(message.message)
        else:
            self.show_error(message.message)

    def action_cancel(self) -> None:
        self.dismiss(None)
