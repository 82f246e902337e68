"""Quitting while tasks run: leave them running, drain, or kill them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from console.cli.output import plural

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

    def __init__(self, running: int, handed_out: int, waiting: int) -> None:
        """Counted as the header counts them: ``running``, ``handed_out`` to an
        executor but not started, and ``waiting`` in the store."""
        super().__init__(classes="dialog-screen")
        self.running = running
        self.handed_out = handed_out
        self.waiting = waiting

    @property
    def question(self) -> str:
        if self.running:
            return f"Quit? {plural(self.running, 'task')} {'is' if self.running == 1 else 'are'} running."
        # queued, as the header and `tasks list` name it: handed to the executor.
        if self.handed_out == 1:
            return "Quit? 1 task queued (handed out, not started yet)."
        return f"Quit? {plural(self.handed_out, 'task')} queued (handed out), none started yet."

    @property
    def detail(self) -> str:
        """What becomes of the tries that have not started, whatever the choice."""
        later = self.handed_out + self.waiting
        stay = "it stays" if later == 1 else "they stay"
        if not later:
            return "Nothing else waits to start."
        if not self.running:  # the question counts the handed-out ones
            if not self.waiting:
                return f"{stay.capitalize()} in the store for the next engine."
            return (
                f"{self.handed_out:,} queued and {self.waiting:,} scheduled: none has started; "
                "they stay in the store for the next engine."
            )
        more = f"{later:,} more {'waits' if later == 1 else 'wait'} to start"
        if not self.handed_out:
            return f"{more}; {stay} in the store for the next engine."
        where = [f"{self.handed_out:,} queued at the executor"]
        if self.waiting:
            where.append(f"{self.waiting:,} scheduled in the store")
        return f"{more} ({', '.join(where)}); {stay} in the store for the next engine."

    @property
    def choices(self) -> list[tuple[str, str]]:
        """Each button: its id and its label, naming the tasks the question counts."""
        them = "it" if (self.running or self.handed_out) == 1 else "them"
        return [
            ("detach", f"(l) Leave {them} running: the next engine adopts {them}"),
            ("drain", f"(d) Drain: start nothing new, wait for {them}, then quit"),
            ("kill", f"(k) Kill {them} now, then quit"),
            ("stay", "(esc) Stay"),
        ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="quit-dialog"):
            yield Static(self.question, classes="dialog-title", markup=False)
            yield Static(self.detail, classes="dialog-detail", markup=False)
            for choice, label in self.choices:
                yield Button(label, id=choice, variant="error" if choice == KILL else "default")

    def on_mount(self) -> None:
        self.query_one("#drain", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = event.button.id
        self.dismiss(None if choice == "stay" else choice)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
