"""The dashboard's keys in one table: bindings, the help screen and the command palette.

k9s and htop habits: ``?`` help, ``/`` filter, ``esc`` back, ``enter`` detail,
``k`` kill, ``space`` freeze, ``<`` ``>`` sort, number keys for panels; a
capital letter for what reaches beyond the selected try (``C``, shift+c:
cancel its whole run).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One key: the Textual key name(s), the action it runs, and how it is shown."""

    keys: str
    action: str  # an action string of the dashboard screen, e.g. "task('kill')"
    description: str
    display: str
    group: str
    mutating: bool = False
    show: bool = True
    palette: bool = True  # offered in the command palette
    footer_group: str = ""  # consecutive keys of one group share a label in the footer


KEYS: tuple[KeySpec, ...] = (
    # ---- looking ------------------------------------------------------------
    KeySpec("question_mark", "help", "Help", "?", "View"),
    KeySpec("slash", "filter", "Filter", "/", "View"),
    KeySpec("escape", "escape", "Clear filter / unzoom", "esc", "View", show=False, palette=False),
    KeySpec("enter", "task('detail')", "Detail", "enter", "View"),
    KeySpec("l", "task('logs')", "Logs", "l", "View"),
    KeySpec("space", "freeze", "Freeze", "space", "View"),
    KeySpec("z", "zoom", "Zoom panel", "z", "View", show=False),
    KeySpec("1", "focus_panel(1)", "Panels", "1-9", "View", palette=False),
    *(
        KeySpec(
            str(n), f"focus_panel({n})", f"Panel {n}", str(n), "View", show=False, palette=False
        )
        for n in range(2, 10)
    ),
    KeySpec("greater_than_sign", "sort(1)", "Sort by next column", ">", "View", show=False),
    KeySpec("less_than_sign", "sort(-1)", "Sort by previous column", "<", "View", show=False),
    # ---- acting on the selected task ------------------------------------------------
    KeySpec("k", "task('kill')", "Kill", "k", "Task", mutating=True),
    KeySpec("r", "task('retry')", "Retry", "r", "Task", mutating=True),
    KeySpec(
        "R",
        "task('retry_downstream')",
        "Retry with downstream",
        "R",
        "Task",
        mutating=True,
        show=False,
    ),
    KeySpec(
        "s",
        "task('mark_success')",
        "Mark success",
        "s",
        "Task",
        mutating=True,
        footer_group="Mark success/failed",
    ),
    KeySpec(
        "f",
        "task('mark_failed')",
        "Mark failed",
        "f",
        "Task",
        mutating=True,
        footer_group="Mark success/failed",
    ),
    KeySpec(
        "right_square_bracket",
        "task('priority_up')",
        "Priority up",
        "]",
        "Task",
        mutating=True,
        show=False,
    ),
    KeySpec(
        "left_square_bracket",
        "task('priority_down')",
        "Priority down",
        "[",
        "Task",
        mutating=True,
        show=False,
    ),
    # The selected task's whole run, as `execconsole runs cancel` (asks first). Not in
    # the footer, which has no room left at 160 columns; ? and the palette list it.
    KeySpec("C", "task('cancel_run')", "Cancel run", "C", "Task", mutating=True, show=False),
    # ---- the engine ------------------------------------------------------------------
    KeySpec("p", "pause", "Pause/resume", "p", "Engine", mutating=True),
    KeySpec(
        "plus,equals_sign",
        "parallelism(1)",
        "Parallelism +1",
        "+",
        "Engine",
        mutating=True,
        footer_group="Parallelism",
    ),
    KeySpec(
        "minus",
        "parallelism(-1)",
        "Parallelism -1",
        "-",
        "Engine",
        mutating=True,
        footer_group="Parallelism",
    ),
    # q before n and o: the footer keeps the first keys when it runs out of room.
    KeySpec("q", "quit", "Quit", "q", "Engine"),
    KeySpec("n", "new_task", "New task", "n", "Engine", mutating=True),
    KeySpec("o", "open_workflow", "Load workflow", "o", "Engine", mutating=True),
)

# Actions whose keys a read-only console hides.
MUTATING_TASK_ACTIONS = frozenset(
    {
        "kill",
        "retry",
        "retry_downstream",
        "mark_success",
        "mark_failed",
        "priority_up",
        "priority_down",
        "cancel_run",
    }
)
MUTATING_ACTIONS = frozenset({"pause", "parallelism", "new_task", "open_workflow"})


def bindings() -> list[Binding]:
    """KEYS as Textual bindings."""
    return [
        Binding(
            spec.keys,
            spec.action,
            spec.description,
            show=spec.show,
            key_display=spec.display,
            group=Binding.Group(spec.footer_group) if spec.footer_group else None,
        )
        for spec in KEYS
    ]


def action_name(action: str) -> tuple[str, tuple[str, ...]]:
    """``"task('kill')"`` -> ``("task", ("kill",))``."""
    name, _, rest = action.partition("(")
    if not rest:
        return name, ()
    arguments = rest.rstrip(")")
    return name, tuple(part.strip().strip("'\"") for part in arguments.split(",") if part.strip())
