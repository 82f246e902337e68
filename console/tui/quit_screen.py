"""Quitting while tasks run: leave them running, drain, or kill them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

# What each choice means for Engine.shutdown (drain ends in "finish").
DETACH, DRAIN, KILL = "detach", "drain", "kill"


class QuitScreen(ModalScreen[str | None]):
    """Dismisses with "detach", "drain", "kill", or None to stay."""

    BINDINGS = [
        Binding("l", "choose('detach')", "Leave running"),
        Binding("d", "choose('drain')", "Drain"),
        Binding("k", "choose('kill')", "Kill"),
        Binding("escape,c", "choose(None)", "Stay"),
    ]

    def __init__(self, running: int, waiting: int) -> None:
        super().__init__(classes="dialog-screen")
        self.running = running
        self.waiting = waiting

    def compose(self) -> ComposeResult:
        tasks = f"{self.running} task{'s are' if self.running != 1 else ' is'} running"
        with Vertical(classes="dialog", id="quit-dialog"):
            yield Static(f"Quit? {tasks}.", classes="dialog-title", markup=False)
            yield Static(
                f"{self.waiting:,} more wait to start; they stay in the store for the next engine.",
                classes="dialog-detail",
                markup=False,
            )
            yield Button("(l) Leave them running: the next engine adopts them", id="detach")
            yield Button("(d) Drain: start nothing new, wait for them, then quit", id="drain")
            yield Button("(k) Kill them now, then quit", id="kill", variant="error")
            yield Button("(esc) Stay", id="stay")

    def on_mount(self) -> None:
        self.query_one("#drain", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = event.button.id
        self.dismiss(None if choice == "stay" else choice)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
