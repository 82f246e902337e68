"""The n form reads numbers as the CLI does, and the dialogs fit small terminals.

Typed into the form, ``1h30m`` is the timeout ``submit --timeout 1h30m``
gives (console/durations.py), and a value the CLI would refuse is refused
with the CLI's line, kept as it was typed, and nothing is stored. At 80x24
and 60x20 the help screen and the form stay inside the terminal, and the
form's Submit button can be seen. Consoles on a seeded store (no engine: a
submitted task waits in the store, which is all these tests look at).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Static

from console.tui.help_screen import HelpScreen
from console.tui.new_task_screen import NewTaskScreen
from console.tui.scenes import hosted_app
from store import Store
from tests.tui.seeded import Seeded, run_app, screen_text, seeded

SIZES = [(80, 24), (60, 20), (160, 45)]
SIZE_IDS = ["80x24", "60x20", "160x45"]


def form_error(form: NewTaskScreen) -> str:
    return str(form.query_one("#form-error", Static).render())


async def open_form(app: Any, pilot: Any, command: str) -> NewTaskScreen:
    await pilot.press("n")
    await pilot.pause()
    form = app.screen
    assert isinstance(form, NewTaskScreen)
    form.query_one("#command", Input).value = command
    return form


async def type_into(pilot: Any, field: Input, text: str) -> None:
    """Key by key, as an operator types (a field's restrictions apply to keys, not to .value)."""
    field.focus()
    field.value = ""
    await pilot.pause()
    await pilot.press(*text)


def adhoc_tasks(s: Seeded) -> list[Any]:
    return Store(s.runtime.config.store_path).list_tasks(dag_id="adhoc")


def store_of(tmp_path: Path) -> Seeded:
    s = seeded(tmp_path / "home")
    s.submit(["extract", "load"])
    return s


# ---- the numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "seconds"), [("1h30m", 5400.0), ("90s", 90.0), ("1h 30m", 5400.0), ("45", 45.0)]
)
def test_a_timeout_typed_as_a_duration_is_submitted_in_seconds(
    tmp_path: Path, typed: str, seconds: float
) -> None:
    s = store_of(tmp_path)
    app = s.app()

    async def scenario(pilot: Any) -> None:
        form = await open_form(app, pilot, "sleep 1")
        timeout = form.query_one("#timeout", Input)
        await type_into(pilot, timeout, typed)
        assert timeout.value == typed  # kept as typed, nothing dropped
        await pilot.press("enter")
        for _ in range(200):  # the submission runs on a worker thread
            if app.screen is not form:
                break
            await pilot.pause(0.05)
        assert app.screen is not form, form_error(form)

    run_app(app, (160, 45), scenario)
    (task,) = adhoc_tasks(s)
    assert task.timeout == seconds


@pytest.mark.parametrize(
    ("field", "typed", "error"),
    [
        (
            "timeout",
            "30m1h",
            "--timeout '30m1h' is not a duration (units out of order: 'h' after a smaller "
            "one): give seconds or a number and a unit, e.g. 90s, 30m, 1h30m, 7d or 500ms",
        ),
        (
            "timeout",
            "1h30",
            "--timeout '1h30' is not a duration: give seconds or a number and a unit, "
            "e.g. 90s, 30m, 1h30m, 7d or 500ms",
        ),
        ("retries", "30m1h", "--retries must be an integer from 0 to 1000, not '30m1h'"),
        ("retries", "1.5", "--retries must be an integer from 0 to 1000, not '1.5'"),
        (
            "priority",
            "high",
            "--priority must be an integer from -2147483648 to 2147483647, not 'high'",
        ),
    ],
)
def test_a_value_the_cli_would_refuse_is_refused_with_its_line_and_kept_as_typed(
    tmp_path: Path, field: str, typed: str, error: str
) -> None:
    s = store_of(tmp_path)
    app = s.app()

    async def scenario(pilot: Any) -> None:
        form = await open_form(app, pilot, "sleep 1")
        box = form.query_one(f"#{field}", Input)
        await type_into(pilot, box, typed)
        assert box.value == typed
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form
        assert form_error(form) == error
        assert box.value == typed
        assert box.has_focus  # the field to fix

    run_app(app, (160, 45), scenario)
    assert adhoc_tasks(s) == []


def test_an_empty_timeout_is_no_timeout_and_the_labels_say_what_to_type(tmp_path: Path) -> None:
    s = store_of(tmp_path)
    app = s.app()

    async def scenario(pilot: Any) -> None:
        form = await open_form(app, pilot, "sleep 1")
        labels = [str(label.render()) for label in form.query("Label")]
        assert "Timeout (s)" not in labels
        assert "e.g. 90s, 1h30m" in form.query_one("#timeout", Input).placeholder
        await pilot.press("enter")
        for _ in range(200):
            if app.screen is not form:
                break
            await pilot.pause(0.05)
        assert app.screen is not form, form_error(form)

    run_app(app, (160, 45), scenario)
    (task,) = adhoc_tasks(s)
    assert task.timeout is None


# ---- the fit -----------------------------------------------------------------------------


def inside(widget: Widget, screen: Region) -> bool:
    return screen.contains_region(widget.region)


def visible_in(widget: Widget, scroll: Widget) -> bool:
    """Shown whole: inside its scrolling container's visible part."""
    return scroll.content_region.contains_region(widget.region)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_the_help_screen_fits_the_terminal_and_wraps_its_text(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = hosted_app(tmp_path / "home")  # the help scene's console: a long summary line

    async def scenario(pilot: Any) -> None:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        dialog = app.screen.query_one("#help-dialog")
        screen = Region(0, 0, *size)
        assert inside(dialog, screen), (dialog.region, size)
        lines = screen_text(app)
        # The right border is drawn on every line of the dialog.
        right = dialog.region.right - 1
        for y in range(dialog.region.y, dialog.region.bottom):
            assert lines[y][right] in "█▀▄▐▌", (y, lines[y])
        summary = "".join(
            line[dialog.region.x : dialog.region.right].strip("█▀▄ ")
            for line in lines[dialog.region.y : dialog.region.bottom]
        )
        assert "started by this console" in summary or "stops when it quits" in summary

    run_app(app, size, scenario)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_the_new_task_form_fits_and_its_buttons_are_always_in_view(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = store_of(tmp_path).app()

    async def scenario(pilot: Any) -> None:
        form = await open_form(app, pilot, "")
        screen = Region(0, 0, *size)
        dialog = form.query_one("#new-task-dialog")
        assert inside(dialog, screen), (dialog.region, size)

        def shown_whole(widget: Widget) -> bool:
            """Inside the dialog's frame, not cut by it (the dialog grows with the error line)."""
            return inside(dialog, screen) and dialog.content_region.contains_region(widget.region)

        def buttons_in_view() -> None:
            for button in form.query(Button):
                assert shown_whole(button), (button.id, button.region, dialog.region)

        buttons_in_view()
        # Tab through every field: each one shows when it has the focus, and the buttons stay.
        fields = form.query_one("#new-task-fields", VerticalScroll)
        assert shown_whole(fields), fields.region
        shell = form.query_one("#shell", Checkbox)
        for _ in range(10):
            await pilot.press("tab")
            await pilot.pause()
            focused = app.focused
            if focused is not None and focused in fields.walk_children():
                assert visible_in(focused, fields), (focused, focused.region, fields.region)
            buttons_in_view()
            if focused is shell:
                break
        assert app.focused is shell
        # A refusal of three lines or so shows between the fields and the buttons.
        form.query_one("#timeout", Input).value = "30m1h"
        await pilot.press("enter")
        await pilot.pause()
        error = form.query_one("#form-error", Static)
        assert "--timeout '30m1h' is not a duration" in form_error(form)
        assert shown_whole(error), (error.region, dialog.region)
        assert error.region.height >= len(form_error(form)) // error.region.width
        buttons_in_view()
        assert shown_whole(fields), fields.region
        timeout = form.query_one("#timeout", Input)
        assert timeout.has_focus and visible_in(timeout, fields)

    run_app(app, size, scenario)
