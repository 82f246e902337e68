"""What the console's small forms share (n: a new task, o: a workflow file).

A modal dialog with an error line and Submit / Cancel buttons: enter in any
field or Submit runs ``submit`` (an operator action on a worker thread, its
outcome sent back here), esc or Cancel closes it. Success closes the form
with the outcome's one line; a refusal shows it under the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from console.tui.messages import ActionFinished

if TYPE_CHECKING:
    from console.tui.operator import OperatorActions


class FormScreen(ModalScreen[str | None]):
    """Dismisses with the submission's outcome, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")
        self._closing_with: tuple[str | None] | None = None  # dismiss when back on top

    def form_footer(self) -> Iterator[Widget]:
        """The error line and the buttons, last in the dialog (compose them in its container)."""
        yield Static("", id="form-error", classes="form-error")
        with Horizontal(classes="dialog-buttons"):
            yield Button("Submit (enter)", id="submit", variant="primary")
            yield Button("Cancel (esc)", id="cancel")

    def submit(self) -> None:
        """Read the fields and call ``send``; or ``show_error``."""
        raise NotImplementedError

    def send(self, label: str, action: Callable[[OperatorActions], str]) -> None:
        """Run an operator action; its outcome comes back to this form."""
        self.app.run_operator(label, action, reply_to=self)  # type: ignore[attr-defined]

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
            self.close(message.message)
        else:
            self.show_error(message.message)

    def close(self, result: str | None) -> None:
        """Dismiss the form, now if it is on top, else when it is back on top.

        Textual's ``Screen.dismiss`` pops the top screen, whichever it is: an
        outcome that arrives while a dialog covers the form (the offer to restart
        a dead engine) would take that dialog away instead.
        """
        if self.is_active:
            self.dismiss(result)
        else:
            self._closing_with = (result,)

    def on_screen_resume(self) -> None:
        if self._closing_with is not None:
            (result,) = self._closing_with
            self._closing_with = None
            self.call_after_refresh(self.close, result)

    def action_cancel(self) -> None:
        self.dismiss(None)
