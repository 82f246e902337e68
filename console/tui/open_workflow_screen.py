"""The o prompt: load a workflow file and submit it as one run."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.tui.messages import ActionFinished


class OpenWorkflowScreen(ModalScreen[str | None]):
    """A path (relative to where the console started); enter loads, validates and submits."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, start_dir: Path | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.start_dir = start_dir or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form", id="open-workflow-dialog"):
            yield Static("Load a workflow file", classes="dialog-title")
            yield Label(f"Path to a TOML workflow (relative to {self.start_dir})")
            yield Input(placeholder="examples/demo.toml", id="path")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Submit (enter)", id="submit", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def submit(self) -> None:
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self.query_one("#form-error", Static).update(Text("give the path of a workflow file"))
            return
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = self.start_dir / path
        self.app.run_operator(  # type: ignore[attr-defined]
            f"load {raw}", lambda ops: ops.submit_workflow(path), reply_to=self
        )

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
            self.query_one("#form-error", Static).update(Text(message.message))

    def action_cancel(self) -> None:
        self.dismiss(None)
