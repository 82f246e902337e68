"""Every key of the console, pressed on a real console: its effect on the engine and the store.

Each test runs the console as ``execconsole`` does: its real engine in a child
process with the real LocalExecutor and its worker processes, a real SQLite
store, and the app under Textual's Pilot.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Input, Static

from console.engine_status import EngineStatus
from console.tui.confirm_screen import ConfirmScreen
from console.tui.engine_process import ChildEngine
from console.tui.help_screen import HelpScreen
from console.tui.launch import stop_engine
from console.tui.live_table import LiveTable
from console.tui.log_screen import LogScreen
from console.tui.new_task_screen import NewTaskScreen
from console.tui.open_workflow_screen import OpenWorkflowScreen
from console.tui.panel_frame import PanelFrame
from console.tui.quit_screen import QuitScreen
from console.tui.task_detail_screen import TaskDetailScreen
from tests.tui.harness import Console, no_process_left

ConsoleFactory = Callable[..., Console]


def in_flight_seen(c: Console) -> int:
    """Tries in flight as both the engine's status and the console's last snapshot show them."""
    status = c.status()
    snapshot = c.app.snapshot
    if status is None or snapshot is None:
        return 0
    counts = snapshot.header.counts
    return min(status.in_flight, counts.get("queued", 0) + counts.get("running", 0))


# What to read while the engine process has not reported yet.
no_status = EngineStatus(pid=0, paused=False, draining=False, in_flight=0, executors={}, workers={})


def is_focused(dashboard: Any, panel: Widget) -> bool:
    return dashboard.focused_panel is panel


def gone(pid: int | None) -> bool:
    """True once the process no longer runs (a zombie counts as gone)."""
    if pid is None:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---- looking --------------------------------------------------------------------------


def test_question_mark_opens_the_help_and_esc_closes_it(console: ConsoleFactory) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        await pilot.press("question_mark")
        await c.wait(pilot, lambda: isinstance(c.app.screen, HelpScreen), "help shown")
        keys = {line.keys for line in c.app.dashboard.help_lines()}
        assert {"?", "/", "k", "r", "s", "f", "C", "p", "+", "-", "n", "o", "q", "1-9"} <= keys
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "back on the dashboard")

    c.run(scenario)


def test_enter_opens_the_task_detail_from_the_store(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("echo detail-line; sleep 30", task_id="detailed")

    async def scenario(pilot: Any) -> None:
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await c.wait(pilot, lambda: c.record(key).pid is not None, "running with a pid")
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        screen = c.app.screen
        assert isinstance(screen, TaskDetailScreen)
        await c.wait(
            pilot,
            lambda: screen.detail is not None and screen.detail.record.pid == c.record(key).pid,
            "detail shows the pid the store has",
        )
        detail = screen.detail
        assert detail is not None
        assert [e.to_state for e in detail.history][:3] == ["scheduled", "queued", "running"]
        assert [t.try_number for t in detail.tries] == [1]
        await c.wait(
            pilot,
            lambda: "detail-line" in (screen.detail.log_tail if screen.detail else ""),
            "log tail",
        )
        await pilot.press("l")  # the detail screen's own keys act on its task
        await c.wait(pilot, lambda: isinstance(c.app.screen, LogScreen), "log from the detail")
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is screen, "back on the detail")
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "back on the dashboard")

    c.run(scenario)


def test_l_follows_the_log_and_slash_searches_it(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("for i in 1 2 3; do echo line-$i; sleep 0.2; done; sleep 30", task_id="talker")

    async def scenario(pilot: Any) -> None:
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("l")
        await c.wait(pilot, lambda: isinstance(c.app.screen, LogScreen), "log shown")
        screen = c.app.screen
        assert isinstance(screen, LogScreen)
        await c.wait(pilot, lambda: "line-3" in screen.log_view.lines, "followed to line-3")
        await pilot.press("slash", *"line-", "enter")
        lines = screen.log_view.lines
        expected = [lines.index(f"line-{n}") for n in (1, 2, 3)]
        await c.wait(pilot, lambda: screen.matches == expected, "three matches")
        assert screen.match_index == 0
        await pilot.press("n", "n")
        assert screen.match_index == 2
        await pilot.press("N")
        assert screen.match_index == 1
        assert not screen.following  # a search stops following, to keep the match in view
        await pilot.press("f")
        assert screen.following
        await pilot.press("escape")  # clears the search
        assert screen.highlighter.pattern is None
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "back on the dashboard")

    c.run(scenario)


def test_slash_filters_every_panel_and_esc_clears_it(console: ConsoleFactory) -> None:
    c = console(paused=True)
    alpha = c.submit("true", task_id="alpha")
    beta = c.submit("true", task_id="beta")

    def queued() -> set[str]:
        return {task.key.task_id for task in c.app.dashboard.queued_panel.tasks.values()}

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.wait(pilot, lambda: queued() == {"alpha", "beta"}, "both waiting")
        await pilot.press("2")  # filtering from the Queued panel...
        await pilot.press("slash", *"alph", "enter")
        await c.wait(pilot, lambda: queued() == {"alpha"}, "only alpha")
        assert c.app.builder.filter == "alph"
        assert dashboard.focused_panel is dashboard.queued_panel  # ...leaves the focus there
        await pilot.press("escape")
        await c.wait(pilot, lambda: queued() == {"alpha", "beta"}, "both again")
        assert c.app.builder.filter is None

    c.run(scenario)
    assert c.state(alpha) == c.state(beta) == "scheduled"  # a filter changes nothing


def test_space_freezes_the_display_while_the_store_moves_on(console: ConsoleFactory) -> None:
    c = console(paused=True)
    first = c.submit("true", task_id="before_freeze")

    def shown() -> set[str]:
        return {task.key.task_id for task in c.app.dashboard.queued_panel.tasks.values()}

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: shown() == {"before_freeze"}, "first task shown")
        await pilot.press("space")
        assert c.app.frozen
        c.submit("true", task_id="during_freeze")
        polls = c.app.polls
        await c.wait(pilot, lambda: c.app.polls >= polls + 3, "polling goes on")
        assert shown() == {"before_freeze"}
        await pilot.press("space")
        await c.wait(pilot, lambda: shown() == {"before_freeze", "during_freeze"}, "caught up")

    c.run(scenario)
    assert c.state(first) == "scheduled"


def test_number_keys_tab_and_z_move_between_and_zoom_panels(console: ConsoleFactory) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        expected: dict[str, Widget] = {
            "2": dashboard.queued_panel,
            "3": dashboard.events_panel,
            "4": dashboard.timeline_panel,
            "5": dashboard.vended_panels[0],
            "1": dashboard.running_panel,
        }

        def framed() -> list[Widget]:
            return [p for p in dashboard.panels if isinstance(p, PanelFrame) and p.looks_focused]

        for key, panel in expected.items():
            await pilot.press(key)
            await c.wait(pilot, partial(is_focused, dashboard, panel), f"{key} focuses {panel.id}")
            # Its frame says so (drawn by the panel, no :focus-within restyle): only this one.
            assert framed() == [panel]
            # Its title is drawn as a tab (bold, in the theme's primary colour), the others' not.
            for other in dashboard.panels:
                assert isinstance(other, PanelFrame)
                top = other.render_lines(Region(0, 0, other.outer_size.width, 1))[0]
                drawn = [seg for seg in top if other.frame_title.split(" ·")[0] in seg.text]
                assert drawn and bool(drawn[0].style and drawn[0].style.bold) is (other is panel)
        await pilot.press("tab")
        await c.wait(
            pilot, lambda: dashboard.focused_panel is not dashboard.running_panel, "tab moves on"
        )
        assert framed() == [dashboard.focused_panel]
        # A switch changes a table's cursor row only: its other rows look the same focused or not.
        for number in range(6):
            c.submit("true", task_id=f"row_{number}")
        table = dashboard.events_panel.table
        await pilot.press("3")
        await c.wait(pilot, lambda: table.row_count >= 5, "rows to compare")
        await c.wait(
            pilot, lambda: c.app.polls > 0 and c.store.count_by_state()["success"] >= 6, "done"
        )
        await pilot.press("space")  # frozen: the rows stay put while we compare
        await pilot.pause()
        focused_rows = [list(table.render_line(y)) for y in range(table.size.height)]
        await pilot.press("2")
        await c.wait(pilot, lambda: not table.has_focus, "blurred")
        blurred_rows = [list(table.render_line(y)) for y in range(table.size.height)]
        cursor_y = table.cursor_row + 1  # below the header
        changed = [y for y, row in enumerate(focused_rows) if row != blurred_rows[y]]
        assert changed == [cursor_y], changed
        await pilot.press("space")
        await pilot.press("2", "z")
        await c.wait(pilot, lambda: dashboard.zoomed is dashboard.queued_panel, "queued zoomed")
        assert not dashboard.running_panel.display and not dashboard.events_panel.display
        await pilot.press("3")
        await c.wait(pilot, lambda: dashboard.zoomed is dashboard.events_panel, "3 zooms events")
        await c.wait(pilot, partial(is_focused, dashboard, dashboard.events_panel), "3 focuses")
        assert not dashboard.queued_panel.display
        await pilot.press("escape")
        await c.wait(pilot, lambda: dashboard.zoomed is None, "unzoomed")
        assert all(panel.display for panel in dashboard.panels)

    c.run(scenario)


def test_greater_and_less_than_sort_the_focused_table(console: ConsoleFactory) -> None:
    c = console(paused=True)
    for task, priority in (("c_task", 5), ("a_task", 1), ("b_task", 3)):
        c.submit("true", task_id=task, priority=priority)

    def order() -> list[str]:
        panel = c.app.dashboard.queued_panel
        return [panel.tasks[row].key.task_id for row in panel.table.row_keys]

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: order() == ["c_task", "b_task", "a_task"], "dispatch order")
        await pilot.press("2")
        table = c.app.dashboard.queued_panel.table
        assert isinstance(c.app.focused, LiveTable)
        await pilot.press("greater_than_sign", "greater_than_sign")  # "#", then "Task"
        await c.wait(pilot, lambda: order() == ["a_task", "b_task", "c_task"], "sorted by task")
        assert table.sort_label.startswith("sorted by Task")
        await pilot.press("less_than_sign", "less_than_sign")  # back to the natural order
        await c.wait(
            pilot, lambda: order() == ["c_task", "b_task", "a_task"], "dispatch order again"
        )
        assert table.sort_column is None

    c.run(scenario)


# ---- acting on the selected task ----------------------------------------------------------


def test_k_asks_and_kills_the_running_task_and_its_processes(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("sleep 60 & sleep 60; wait", task_id="victim")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.record(key).pid is not None, "running")
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("k")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        await pilot.press("n")  # changed my mind
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "dialog closed")
        assert c.state(key) == "running"
        await pilot.press("k")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked again")
        await pilot.press("y")
        await c.wait(pilot, lambda: c.state(key) == "failed", "killed")

    pid = None

    async def run(pilot: Any) -> None:
        nonlocal pid
        await c.wait(pilot, lambda: c.record(key).pid is not None, "running")
        pid = c.record(key).pid
        children = psutil.Process(pid).children(recursive=True)
        await scenario(pilot)
        await c.wait(
            pilot, lambda: gone(pid) and all(gone(p.pid) for p in children), "no process left"
        )

    c.run(run)
    record = c.record(key)
    assert record.reason == "killed by operator"
    assert record.no_retry


def test_r_retries_a_failed_task(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("exit 3", task_id="flaky")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "failed", "failed")
        await c.select(pilot, c.app.dashboard.events_panel, key)
        await pilot.press("r")
        await c.wait(pilot, lambda: len(c.store.tries(c.record(key))) == 2, "a second try")

    c.run(scenario)
    second = c.store.tries(c.record(key))[1]
    assert second.try_number == 2


def test_s_and_f_mark_success_and_failed_after_asking(console: ConsoleFactory) -> None:
    c = console(paused=True)
    waiting = c.submit("true", task_id="skip_me")
    doomed = c.submit("true", task_id="doomed")

    async def scenario(pilot: Any) -> None:
        panel = c.app.dashboard.queued_panel
        await c.select(pilot, panel, waiting)
        await pilot.press("s")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        await pilot.press("y")
        await c.wait(pilot, lambda: c.state(waiting) == "success", "marked success")
        await c.select(pilot, panel, doomed)
        await pilot.press("f")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        await pilot.press("y")
        await c.wait(pilot, lambda: c.state(doomed) == "failed", "marked failed")

    c.run(scenario)
    assert c.record(waiting).reason == "marked success by operator"


def test_square_brackets_change_a_waiting_tasks_priority(console: ConsoleFactory) -> None:
    c = console(paused=True)
    key = c.submit("true", task_id="reprioritised", priority=3)

    async def scenario(pilot: Any) -> None:
        await c.select(pilot, c.app.dashboard.queued_panel, key)
        await pilot.press("right_square_bracket")
        await c.wait(pilot, lambda: c.record(key).priority == 4, "priority up")
        await pilot.press("left_square_bracket")
        await c.wait(pilot, lambda: c.record(key).priority == 3, "priority down")

    c.run(scenario)


# ---- the engine ----------------------------------------------------------------------------


def engine_paused(c: Console) -> bool | None:
    status = c.status()
    return status.paused if status is not None else None


def test_p_pauses_and_resumes_dispatch(console: ConsoleFactory) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        await pilot.press("p")
        await c.wait(
            pilot,
            lambda: c.store.get_setting("paused") is True and engine_paused(c) is True,
            "paused in the store and in the engine process",
        )
        await c.wait(
            pilot,
            lambda: c.app.snapshot is not None and c.app.snapshot.header.paused,
            "shown paused",
        )
        key = c.submit("true", task_id="held")
        polls = c.app.polls
        await c.wait(pilot, lambda: c.app.polls >= polls + 2, "a few polls")
        assert c.state(key) == "scheduled"  # nothing starts while paused
        await pilot.press("p")
        await c.wait(
            pilot,
            lambda: c.store.get_setting("paused") is False and engine_paused(c) is False,
            "resumed",
        )
        await c.wait(pilot, lambda: c.state(key) == "success", "dispatched after resuming")

    c.run(scenario)


def test_plus_and_minus_change_the_executors_parallelism(console: ConsoleFactory) -> None:
    c = console(parallelism=2)

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.app.snapshot is not None, "first snapshot")
        await pilot.press("plus")
        await c.wait(pilot, lambda: c.parallelism() == 3, "parallelism 3 in the engine process")
        assert c.store.get_setting("parallelism.local") == 3
        await pilot.press("minus", "minus")
        await c.wait(pilot, lambda: c.parallelism() == 1, "parallelism 1")
        assert c.store.get_setting("parallelism.local") == 1
        await pilot.press("minus")  # 0 would mean unlimited: refused
        await pilot.pause(0.3)
        assert c.parallelism() == 1
        assert c.store.pending_requests() == []

    c.run(scenario)


def test_n_submits_an_ad_hoc_task_from_the_form(console: ConsoleFactory) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        await pilot.press("n")
        await c.wait(pilot, lambda: isinstance(c.app.screen, NewTaskScreen), "form shown")
        await pilot.press(*"echo")
        c.app.screen.query_one("#command", Input).value = "echo from-the-form"  # typing is slow
        await pilot.press("enter")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "form closed")

    c.run(scenario)
    (record,) = c.store.list_tasks(dag_id="adhoc")
    assert record.command == ["echo", "from-the-form"]
    assert record.task_id == "echo"


def test_o_loads_and_submits_a_workflow_file(console: ConsoleFactory, tmp_path: Path) -> None:
    workflow = tmp_path / "two.toml"
    workflow.write_text(
        'id = "two_steps"\n'
        '[[task]]\nid = "first"\ncommand = ["true"]\n'
        '[[task]]\nid = "second"\nupstream = ["first"]\ncommand = ["true"]\n'
    )
    c = console()

    async def scenario(pilot: Any) -> None:
        await pilot.press("o")
        await c.wait(pilot, lambda: isinstance(c.app.screen, OpenWorkflowScreen), "prompt shown")
        path = c.app.screen.query_one("#path", Input)
        path.value = str(tmp_path / "missing.toml")  # typing a long path is slow
        await pilot.press("enter")
        error = c.app.screen.query_one("#form-error", Static)
        await c.wait(
            pilot, lambda: "missing.toml" in str(error.render()), "the error shown in the prompt"
        )
        assert isinstance(c.app.screen, OpenWorkflowScreen)  # a bad path keeps the prompt open
        # A broken file: every problem is listed in the prompt, one per line.
        broken = tmp_path / "broken.toml"
        broken.write_text(
            'id = "broken"\n[[task]]\nid = "a"\ncommand = "sleep 1"\n'
            '[[task]]\nid = "b"\ncommand = ["true"]\nupstream = ["zzz"]\n'
        )
        path.value = str(broken)
        await pilot.press("enter")
        await c.wait(pilot, lambda: "'zzz'" in str(error.render()), "both problems shown")
        assert "task 'a': 'command' is a string" in str(error.render())
        path.value = str(workflow)
        await pilot.press("enter")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "prompt closed")
        await c.wait(
            pilot, lambda: c.store.unfinished_count(dag_id="two_steps") == 0, "run finished"
        )

    c.run(scenario)
    assert {r.task_id: str(r.state) for r in c.store.list_tasks(dag_id="two_steps")} == {
        "first": "success",
        "second": "success",
    }


def test_command_palette_runs_the_same_actions(console: ConsoleFactory) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Pause/resume")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await c.wait(
            pilot, lambda: c.store.get_setting("paused") is True, "paused from the palette"
        )

    c.run(scenario)


# ---- quitting -------------------------------------------------------------------------------


def test_q_quits_at_once_when_nothing_runs(console: ConsoleFactory) -> None:
    c = console()

    async def scenario(pilot: Any) -> None:
        await pilot.press("q")

    c.run(scenario)
    assert c.app.return_value == "finish"


def test_q_with_running_tasks_asks_and_k_kills_them(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("sleep 60", task_id="long")
    pid = None

    async def scenario(pilot: Any) -> None:
        nonlocal pid
        await c.wait(pilot, lambda: c.record(key).pid is not None, "running")
        pid = c.record(key).pid
        await c.wait(pilot, lambda: in_flight_seen(c) == 1, "reported by the engine and shown")
        await pilot.press("q")
        await c.wait(pilot, lambda: isinstance(c.app.screen, QuitScreen), "asked")
        await pilot.press("k")

    c.run(scenario)
    assert c.app.return_value == "kill"
    assert c.engine is not None
    stop_engine(c.engine, "kill")  # what launch() does with the answer
    assert not c.engine.running and c.engine.returncode == 0
    assert c.state(key) == "failed"
    assert gone(pid)
    assert c.store.lease_owner() is None
    assert no_process_left(c.home) == []


def test_ctrl_q_with_running_tasks_asks_too_and_l_leaves_them_to_the_next_engine(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit("sleep 60", task_id="left_alone")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.record(key).pid is not None, "running")
        await c.wait(pilot, lambda: in_flight_seen(c) == 1, "reported by the engine and shown")
        await pilot.press("ctrl+q")
        await c.wait(pilot, lambda: isinstance(c.app.screen, QuitScreen), "asked")
        await pilot.press("l")

    c.run(scenario)
    assert c.app.return_value == "detach"
    assert c.engine is not None
    stop_engine(c.engine, "detach")  # what launch() does with the answer
    assert not c.engine.running and c.engine.returncode == 0
    # Nothing is recorded as ended, the task still runs, and the store is free.
    record = c.record(key)
    assert record.state == "running" and not gone(record.pid)
    assert c.store.lease_owner() is None
    # The next console's engine adopts the try: same process, still running.
    after = console()

    async def adopted(pilot: Any) -> None:
        await after.wait(
            pilot,
            lambda: (after.status() or no_status).in_flight == 1,
            "adopted by the next engine",
        )
        assert after.record(key).pid == record.pid and after.state(key) == "running"

    after.run(adopted)


def test_q_then_d_drains_and_closes_when_the_last_task_ends(
    console: ConsoleFactory, tmp_path: Path
) -> None:
    c = console(parallelism=1)
    gate = tmp_path / "let-it-finish"
    running = c.submit(f"while [ ! -e {gate} ]; do sleep 0.05; done", task_id="finishing")
    # The engine hands the executor a small backlog (twice the parallelism);
    # draining gives it back, and nothing more starts.
    waiting = [c.submit("true", task_id=f"never_started_{n}") for n in range(3)]

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(running) == "running", "running")
        await c.wait(pilot, lambda: in_flight_seen(c) >= 1, "reported by the engine and shown")
        await pilot.press("q")
        await c.wait(pilot, lambda: isinstance(c.app.screen, QuitScreen), "asked")
        await pilot.press("d")
        await c.wait(pilot, lambda: (c.status() or no_status).draining, "draining")
        await c.wait(
            pilot,
            lambda: (c.status() or no_status).in_flight == 1,
            "backlog given back",
        )
        assert c.app.is_running  # still open while a task runs
        gate.touch()
        await c.wait_closed(pilot)  # by itself, once the running task ended

    c.run(scenario)
    assert c.app.return_value == "finish"
    assert c.engine is not None and c.engine.drained
    stop_engine(c.engine, "finish")
    assert c.engine.returncode == 0
    assert c.state(running) == "success"
    assert [c.state(key) for key in waiting] == ["scheduled"] * 3
    assert no_process_left(c.home) == []


def test_the_engine_dying_is_shown_and_restarting_it_adopts_its_tasks(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit("sleep 60", task_id="survivor")
    first = c.engine
    assert first is not None

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        pid = c.record(key).pid
        os.kill(first.pid, signal.SIGKILL)
        await c.wait(pilot, lambda: c.app.engine_error is not None, "the death noticed")
        assert "killed by SIGKILL" in (c.app.engine_error or "")
        assert "ENGINE STOPPED" in str(c.app.dashboard.query_one("#header-mode").render())
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "restart offered")
        await pilot.press("y")
        await c.wait(
            pilot,
            lambda: c.app.context.engine is not first and c.app.engine_error is None,
            "a new engine",
        )
        assert f"engine pid {c.app.context.engine.pid}" in c.app.title  # type: ignore[union-attr]
        await c.wait(pilot, lambda: in_flight_seen(c) == 1, "the try adopted")
        assert c.record(key).pid == pid and c.state(key) == "running"
        await pilot.press("q")
        await c.wait(pilot, lambda: isinstance(c.app.screen, QuitScreen), "asked")
        await pilot.press("k")

    c.run(scenario)
    current = c.app.context.engine
    assert isinstance(current, ChildEngine) and current is not first
    stop_engine(current, "kill")
    assert c.state(key) == "failed"
    assert no_process_left(c.home) == []
