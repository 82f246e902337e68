"""The n form: one ad-hoc task, submitted like ``execconsole submit -- COMMAND``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.scalar import Scalar
from textual.widgets import Checkbox, Input, Label, Select, Static

from console.cli.errors import BadInput, duration_option, shown
from console.tui.form_screen import FormScreen
from console.tui.operator import command_refusal
from console.workflow import PRIORITY_MAX, PRIORITY_MIN, RETRIES_MAX


class FieldError(ValueError):
    """A field the CLI would refuse: the message is the CLI's line, ``field`` the widget id."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ShellCheckbox(Checkbox, inherit_bindings=False):
    """The shell box: space ticks it, and enter submits the form, as in the fields.

    Textual's Checkbox toggles on enter too: ticking the box with space, then
    pressing enter to submit, unticked it again.
    """

    BINDINGS = [Binding("space", "toggle_button", "Toggle", show=False)]


class FormFooter(Vertical):
    """The error line and the buttons; when a long error makes it taller, the fields give way."""

    def on_resize(self) -> None:
        screen = self.screen
        if isinstance(screen, NewTaskScreen):
            screen.fit()


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
        # The fields scroll when the terminal is too short for them; the title,
        # the error line and the buttons stay in view (console.tcss).
        with Vertical(classes="dialog form", id="new-task-dialog"):
            yield Static("New ad-hoc task", classes="dialog-title")
            with VerticalScroll(id="new-task-fields"):
                yield Label("Command (split like a shell would; tick shell for pipes and $VARS)")
                yield Input(placeholder="e.g. sleep 30", id="command")
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
                # Plain text fields: a restricted Input drops the keys it refuses
                # (1h30m became 130); these say what is wrong on submit instead.
                with Horizontal(classes="form-row"):
                    with Vertical():
                        yield Label("Priority")
                        yield Input("1", id="priority")
                    with Vertical():
                        yield Label("Retries")
                        yield Input("0", id="retries")
                    with Vertical():
                        yield Label("Timeout (optional)")
                        yield Input("", placeholder="e.g. 90s, 1h30m", id="timeout")
                yield ShellCheckbox("Run through the shell", id="shell")
            with FormFooter(id="new-task-footer"):
                yield from self.form_footer()

    def on_mount(self) -> None:
        self.query_one("#command", Input).focus()
        self.call_after_refresh(self.fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit)

    def fit(self) -> None:
        """Cap the fields' height at what the dialog has left, so the buttons stay in view.

        A vertical layout does not shrink a child to fit (CSS can't say "the
        dialog's max-height less its title and footer"); the fields scroll.
        """
        dialog = self.query_one("#new-task-dialog")
        fields = self.query_one("#new-task-fields")
        most = dialog.styles.max_height
        if most is None:
            return
        # What the title and the footer take, their margins included.
        children = [child for child in dialog.children if child.display]
        span = max(child.region.bottom for child in children) - min(
            child.region.y for child in children
        )
        others = span - fields.outer_size.height
        room = int(most.resolve(self.size, self.app.size)) - dialog.styles.gutter.height - others
        room = max(room, 3)  # a field's height: the scrollbar shows there is more
        if fields.styles.max_height != Scalar.from_number(room):
            fields.styles.max_height = room

    def values(self) -> dict[str, Any]:
        """The form as keyword arguments for OperatorActions.submit_command.

        Raises:
            FieldError: a number or duration ``execconsole submit`` would refuse,
                with the line it would print (the bounds are checked on submit,
                as there).
        """

        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        timeout = text("timeout")
        return {
            "command_line": text("command"),
            "task_id": text("task-id") or None,
            "executor": str(self.query_one("#executor", Select).value),
            "priority": whole_number(
                "priority", text("priority") or "1", f"from {PRIORITY_MIN} to {PRIORITY_MAX}"
            ),
            "retries": whole_number("retries", text("retries") or "0", f"from 0 to {RETRIES_MAX}"),
            "timeout": duration("timeout", timeout) if timeout else None,
            "shell": self.query_one("#shell", Checkbox).value,
        }

    def action_submit_form(self) -> None:
        self.submit()

    def submit(self) -> None:
        try:
            values = self.values()
        except FieldError as error:
            self.show_error(str(error))
            self.query_one(f"#{error.field}", Input).focus()
            return
        refusal = command_refusal(values["command_line"], shell=values["shell"])
        if refusal is not None:
            # Said here at once; the shell box takes the focus when it is the remedy.
            self.show_error(refusal)
            if values["command_line"].strip():
                self.query_one("#shell", Checkbox).focus()
            return
        self.send("submit", lambda ops: ops.submit_command(**values))


def whole_number(field: str, text: str, bounds: str) -> int:
    """``text`` as an integer option reads it, or the line that refuses it.

    Worded as ``execconsole submit`` words its bounds (console/actions.py):
    "--priority must be an integer from ... to ..., not ...".
    """
    try:
        return int(text)
    except ValueError:
        raise FieldError(
            field, f"--{field} must be an integer {bounds}, not {shown(text)}"
        ) from None


def duration(field: str, text: str) -> float:
    """``text`` as ``submit --timeout`` reads it: seconds, or e.g. 90s, 1h30m."""
    try:
        return duration_option(f"--{field}", text)
    except BadInput as error:
        raise FieldError(field, str(error)) from None
