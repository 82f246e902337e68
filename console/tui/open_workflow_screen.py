"""The o prompt: load a workflow file and submit it as one run."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from console.tui.form_screen import FormScreen


class OpenWorkflowScreen(FormScreen):
    """A path (relative to where the console started); enter loads, validates and submits."""

    def __init__(self, start_dir: Path | None = None) -> None:
        super().__init__()
        self.start_dir = start_dir or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form", id="open-workflow-dialog"):
            yield Static("Load a workflow file", classes="dialog-title")
            yield Label(f"Path to a TOML workflow (relative to {self.start_dir})")
            yield Input(placeholder="examples/demo.toml", id="path")
            yield from self.form_footer()

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def submit(self) -> None:
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self.show_error("give the path of a workflow file")
            return
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = self.start_dir / path
        self.send(f"load {raw}", lambda ops: ops.submit_workflow(path))
