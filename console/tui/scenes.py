"""Deterministic scenes of the console, for screenshots and snapshot tests.

``python -m console.tui.scenes screenshots/`` (``make screenshots``) renders
each scene to ``<folder>/<name>.svg``. The snapshot tests render the same
scenes through ``snap_compare``. Every scene is built by ``make_app`` from a
store seeded here with a fixed clock, polling off, fixed process readings and
fixed worker rows, so two renders are identical byte for byte.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pendulum

from console.engine_status import EngineStatus
from console.process_probe import ProcessUsage, StaticProbe
from console.runtime import Runtime
from console.snapshot import Snapshot, WorkerRow
from console.tui.app import ConsoleApp
from console.tui.factory import make_app
from console.tui.task_panel import TaskRef
from executors.state import TaskState
from executors.workload import Workload
from store import Batch, Store, TaskRecord, TaskSubmission

NOW = pendulum.datetime(2026, 11, 21, 9, 30, 0, tz="UTC")
SIZE = (160, 50)
DAG = "nightly_etl"
RUN = "scheduled__20261121T0900"
BACKFILL_TASKS = 10_000
EXECUTOR = "local"
WORKERS = {1: 41201, 2: 41202, 3: 41203, 4: 41204}
HOST = "etl-01"
ENGINE_PID = 48210

# (task, upstream, priority): the nightly ETL run the scenes show.
ETL_TASKS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("start", (), 10),
    ("extract_orders", ("start",), 8),
    ("extract_customers", ("start",), 6),
    ("extract_products", ("start",), 6),
    ("extract_payments", ("start",), 6),
    ("refresh_exchange_rates", ("start",), 6),
    ("extract_clickstream", ("start",), 2),
    ("validate_orders", ("extract_orders",), 8),
    ("validate_customers", ("extract_customers",), 6),
    ("validate_products", ("extract_products",), 6),
    ("validate_payments", ("extract_payments", "refresh_exchange_rates"), 6),
    (
        "transform_sales",
        ("validate_orders", "validate_customers", "validate_products", "validate_payments"),
        8,
    ),
    ("transform_inventory", ("validate_products",), 4),
    ("compute_recommendations", ("transform_sales",), 2),
    ("publish_recommendations", ("compute_recommendations",), 2),
    ("load_sales_fact", ("transform_sales",), 8),
    ("report_daily_sales", ("load_sales_fact",), 5),
    ("report_stock_levels", ("transform_inventory",), 5),
    ("vacuum_staging", ("load_sales_fact",), 0),
    ("archive_raw_files", ("extract_clickstream",), 0),
    ("sessionize_clickstream", ("extract_clickstream",), 2),
    ("transform_funnel", ("sessionize_clickstream",), 3),
    ("build_dashboard", ("report_daily_sales", "report_stock_levels"), 5),
    ("email_report", ("build_dashboard",), 5),
)

# (task, worker slot, start "HH:MM:SS", end or None, final state, exit code, reason)
HISTORY: tuple[tuple[str, int, str, str | None, TaskState, int | None, str | None], ...] = (
    ("start", 1, "09:25:02", "09:25:03", TaskState.SUCCESS, 0, None),
    ("extract_orders", 1, "09:25:03", "09:25:41", TaskState.SUCCESS, 0, None),
    ("extract_customers", 2, "09:25:03", "09:25:30", TaskState.SUCCESS, 0, None),
    ("extract_products", 3, "09:25:03", "09:25:18", TaskState.SUCCESS, 0, None),
    ("extract_payments", 4, "09:25:03", "09:25:13", TaskState.UP_FOR_RETRY, 75, "exit code 75"),
    ("validate_products", 3, "09:25:19", "09:25:31", TaskState.SUCCESS, 0, None),
    ("extract_payments", 4, "09:25:16", "09:25:52", TaskState.SUCCESS, 0, None),
    ("refresh_exchange_rates", 2, "09:25:31", "09:25:40", TaskState.SUCCESS, 0, None),
    ("validate_customers", 2, "09:25:41", "09:26:05", TaskState.SUCCESS, 0, None),
    ("validate_orders", 1, "09:25:42", "09:26:30", TaskState.SUCCESS, 0, None),
    ("validate_payments", 4, "09:25:53", "09:26:40", TaskState.SUCCESS, 0, None),
    ("extract_clickstream", 3, "09:27:10", None, TaskState.RUNNING, None, None),
    ("transform_sales", 2, "09:26:41", "09:28:10", TaskState.SUCCESS, 0, None),
    (
        "compute_recommendations",
        4,
        "09:28:11",
        "09:28:21",
        TaskState.FAILED,
        None,
        "timed out after 10s",
    ),
    ("load_sales_fact", 1, "09:28:11", "09:29:02", TaskState.SUCCESS, 0, None),
    ("transform_inventory", 2, "09:28:40", None, TaskState.RUNNING, None, None),
    ("report_daily_sales", 1, "09:29:03", None, TaskState.RUNNING, None, None),
    ("vacuum_staging", 4, "09:29:20", None, TaskState.RUNNING, None, None),
)

# Fixed readings of the running tasks' process trees, by the pid each is given.
PIDS = {
    "extract_clickstream": 51873,
    "transform_inventory": 52010,
    "report_daily_sales": 52144,
    "vacuum_staging": 52161,
}
USAGE = {
    51873: ProcessUsage(97.0, 48_300_000, 2),
    52010: ProcessUsage(12.0, 9_650_000, 1),
    52144: ProcessUsage(3.0, 6_100_000, 1),
    52161: ProcessUsage(0.0, 2_050_000, 1),
}
LOG_LINES = {
    "extract_clickstream": [
        f"click {i:06d} session=s{i % 977:03d} page=/product/{i % 311} dwell_ms={i * 37 % 9000}"
        for i in range(41000, 41240)
    ],
    "transform_inventory": [
        "computing stock levels",
        "  warehouse eu-west-1: 1211 skus",
        "  warehouse us-east-1: 662 skus",
    ],
    "report_daily_sales": ["rendering daily sales", "  page 1/4: revenue by region"],
    "vacuum_staging": [
        "vacuuming staging table 1/5",
        "vacuuming staging table 2/5",
        "vacuuming staging table 3/5",
    ],
    "compute_recommendations": [
        "training recommendations on 14 days of sessions",
        *(f"epoch {i}/60" for i in range(1, 11)),
        "execconsole: timed out after 10s; SIGTERM sent to the process group",
    ],
}


def at(hms: str) -> pendulum.DateTime:
    hour, minute, second = (int(part) for part in hms.split(":"))
    return NOW.replace(hour=hour, minute=minute, second=second)


# ---- seeding ---------------------------------------------------------------------------
class Seeder:
    """Writes the scenes' store through the store's own API, each change at its own time."""

    def __init__(self, store: Store, logs_dir: Path) -> None:
        self.store = store
        self.logs_dir = logs_dir

    def commit(self, moment: pendulum.DateTime, batch: Batch) -> None:
        self.store.clock = lambda: moment
        self.store.commit(batch)

    def current(self, task_id: str, dag: str = DAG, run: str = RUN) -> TaskRecord:
        return self.store.resolve(f"{dag}/{task_id}/{run}")

    def log_path(self, record: TaskRecord) -> str:
        return str(
            self.logs_dir
            / record.dag_id
            / record.run_id
            / record.task_id
            / f"try-{record.try_number}.log"
        )

    def queue(self, record: TaskRecord, moment: pendulum.DateTime) -> TaskRecord:
        batch = Batch()
        path = self.log_path(record)
        batch.transition(
            record,
            TaskState.QUEUED,
            actor="engine",
            token=f"tok-{record.id}",
            queued_at=moment.to_iso8601_string(),
            log_path=path,
        )
        self.commit(moment, batch)
        lines = LOG_LINES.get(
            record.task_id, [f"{record.task_id.replace('_', ' ')}: started", "done"]
        )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("\n".join(lines) + "\n")
        return self.current(record.task_id, record.dag_id, record.run_id)

    def run(self, record: TaskRecord, slot: int, moment: pendulum.DateTime) -> TaskRecord:
        batch = Batch()
        pid = PIDS.get(record.task_id, 50000 + record.id)
        batch.transition(
            record,
            TaskState.RUNNING,
            actor=f"executor:{EXECUTOR}",
            pid=pid,
            pid_create_time=1795252000.0 + record.id,
            hostname=HOST,
            worker=f"{EXECUTOR}:{WORKERS[slot]}",
            start_date=moment.to_iso8601_string(),
        )
        self.commit(moment, batch)
        return self.current(record.task_id, record.dag_id, record.run_id)

    def finish(
        self,
        record: TaskRecord,
        state: TaskState,
        moment: pendulum.DateTime,
        exit_code: int | None,
        reason: str | None,
    ) -> None:
        batch = Batch()
        started = pendulum.instance(
            datetime.fromisoformat(record.start_date or moment.to_iso8601_string())
        )
        fields: dict[str, Any] = {
            "end_date": moment.to_iso8601_string(),
            "duration": (moment - started).total_seconds(),
            "exit_code": exit_code,
        }
        if state == TaskState.FAILED and exit_code is None:
            fields["signal"] = 15
        batch.transition(record, state, actor=f"executor:{EXECUTOR}", reason=reason, **fields)
        if state == TaskState.UP_FOR_RETRY:
            batch.new_try(record, actor="engine", reason=f"retry {record.try_number} of 2")
        self.commit(moment, batch)


def seed(home: Path) -> Runtime:
    """A store holding the nightly ETL run mid-flight and 10,000 backfill tasks waiting."""
    runtime = Runtime.load(home=home, executor=EXECUTOR, parallelism=4)
    runtime.config.ensure_dirs()
    store = Store(runtime.config.store_path, clock=lambda: at("09:25:00"))
    try:
        seeder = Seeder(store, runtime.config.logs_dir)
        submissions = [
            TaskSubmission(
                task_id=task,
                command=["sh", "-c", f"echo {task}"],
                executor=EXECUTOR,
                priority=priority,
                upstream=list(upstream),
                retries=2 if task == "extract_payments" else 0,
                timeout=10 if task == "compute_recommendations" else None,
            )
            for task, upstream, priority in ETL_TASKS
        ]
        store.submit(DAG, RUN, submissions, source="examples/nightly_etl.toml")
        store.clock = lambda: at("09:20:00")
        backfill = [
            TaskSubmission(
                task_id=f"partition_{n:05d}", command=["sh", "-c", "sleep 1"], executor=EXECUTOR
            )
            for n in range(BACKFILL_TASKS)
        ]
        store.submit("backfill_2025", "manual__20261121T0920_b4c1", backfill, source="submit")
        # Every step of HISTORY in the order it happened, so that the audit log
        # (the Events panel, newest first) reads in time order as a live one does.
        steps: list[tuple[pendulum.DateTime, int, Callable[[], object]]] = []
        for task, slot, start, end, state, exit_code, reason in HISTORY:
            started = at(start)
            steps.append(
                (started.subtract(seconds=1), 1, partial(_queue_step, seeder, task, started))
            )
            steps.append((started, 2, partial(_run_step, seeder, task, slot, started)))
            if end is not None:
                finish = partial(_finish_step, seeder, task, state, at(end), exit_code, reason)
                steps.append((at(end), 0, finish))  # an end, then what it lets start
        for _moment, _order, step in sorted(steps, key=lambda item: (item[0], item[1])):
            step()
        for task in ("report_stock_levels", "sessionize_clickstream"):
            seeder.queue(seeder.current(task), at("09:29:58"))
        settings = Batch()
        settings.set_setting(f"parallelism.{EXECUTOR}", 4)
        seeder.commit(at("09:29:59"), settings)
    finally:
        store.close()
    return runtime


def _queue_step(seeder: Seeder, task: str, started: pendulum.DateTime) -> None:
    seeder.queue(seeder.current(task), started.subtract(seconds=1))


def _run_step(seeder: Seeder, task: str, slot: int, started: pendulum.DateTime) -> None:
    seeder.run(seeder.current(task), slot, started)


def _finish_step(
    seeder: Seeder,
    task: str,
    state: TaskState,
    ended: pendulum.DateTime,
    exit_code: int | None,
    reason: str | None,
) -> None:
    seeder.finish(seeder.current(task), state, ended, exit_code, reason)


# ---- scenes -------------------------------------------------------------------------------
def scene_workers(snapshot: Snapshot) -> Snapshot:
    """The Workers panel's rows: four busy workers and one that was killed."""
    running = {row.worker: row for row in snapshot.running}
    rows = []
    for slot, pid in WORKERS.items():
        task = running.get(f"{EXECUTOR}:{pid}")
        title = (
            f"worker:busy {task.key} [execconsole {EXECUTOR}]"
            if task
            else f"worker:idle [execconsole {EXECUTOR}] {slot * 3} done"
        )
        rows.append(
            WorkerRow(
                executor=EXECUTOR,
                pid=pid,
                title=title,
                busy=task is not None,
                task=str(task.key) if task else None,
                cpu_percent=0.3 * slot,
                rss=22_400_000 + slot * 131_072,
                tasks_done=slot * 3,
            )
        )
    rows.append(
        WorkerRow(
            executor=EXECUTOR,
            pid=41190,
            title=f"worker:busy {DAG}/compute_recommendations/{RUN}#1 [execconsole {EXECUTOR}]",
            busy=False,
            task=None,
            cpu_percent=None,
            rss=None,
            tasks_done=2,
            alive=False,
            exit_reason="killed by SIGKILL",
        )
    )
    return replace(snapshot, workers=tuple(rows))


class StaticEngine:
    """The console's own engine in a scene: a fixed status, never ends (``EngineLink``)."""

    on_exit: Callable[[Any], None] | None = None
    drain_requested = False
    running = True
    drained = False

    def __init__(self, fixed: EngineStatus) -> None:
        self.fixed = fixed
        self.pid = fixed.pid

    def status(self) -> EngineStatus:
        return self.fixed

    def release(self) -> None:
        """A scene's engine dispatches nothing, held or not."""

    def drain(self) -> None:
        self.drain_requested = True

    def run_key(self, *args: Any) -> bool:
        return False

    def exit_reason(self) -> str:
        return f"the engine (pid {self.pid}) is running"

    def wait_ready(self, timeout: float = 0.0) -> None:
        return None

    def respawn(self) -> StaticEngine:
        return self


def hosted_app(home: Path) -> ConsoleApp:
    """The console on its own engine (its status taken from an engine built, not started)."""
    runtime = seed(home)
    engine = runtime.build_engine()
    executor = engine.executors[EXECUTOR]
    store = runtime.store()
    # The executor's own bookkeeping, as a live engine would have it.
    for record in store.in_flight():
        if record.state == TaskState.RUNNING:
            executor.running.add(record.key)
        else:
            executor.queue_workload(
                Workload(
                    key=record.key,
                    command=record.command,
                    log_path=record.log_path or "",
                    token=record.token or "",
                )
            )
    engine.messages.append("parallelism of local set to 4")
    status = replace(EngineStatus.from_engine(engine), pid=ENGINE_PID)
    return make_app(
        runtime,
        engine=StaticEngine(status),
        clock=lambda: NOW,
        polling=False,
        probe=StaticProbe(USAGE),
        snapshot_hook=scene_workers,
    )


def attached_app(home: Path) -> ConsoleApp:
    """The console attached to an engine another process hosts."""
    runtime = seed(home)
    owner = {
        "pid": 48113,
        "hostname": "etl-01",
        "acquired_at": at("09:00:00").to_iso8601_string(),
        "heartbeat": 0.0,
    }
    return make_app(
        runtime, attached_to=owner, clock=lambda: NOW, polling=False, probe=StaticProbe(USAGE)
    )


async def select_task(pilot: Any, task_id: str, panel: str = "running") -> TaskRef:
    """Focus a panel and put its cursor on a task's row."""
    app: ConsoleApp = pilot.app
    dashboard = app.dashboard
    target = {
        "running": dashboard.running_panel,
        "queued": dashboard.queued_panel,
        "events": dashboard.events_panel,
    }[panel]
    for _ in range(100):  # the first snapshot is drawn after the first refresh
        if target.tasks:
            break
        await pilot.pause(0.05)
    target.table.focus()
    for key, task in target.tasks.items():
        if task.key.task_id == task_id:
            target.table.move_cursor(row=target.table.row_keys.index(key))
            await pilot.pause()
            return task
    raise LookupError(f"{task_id} is not in the {panel} panel")


async def _overview(pilot: Any) -> None:
    await select_task(pilot, "extract_clickstream")


async def _detail(pilot: Any) -> None:
    app: ConsoleApp = pilot.app
    record = app.builder.record(_ti_id(app, "compute_recommendations"))
    assert record is not None
    app.run_task_action(
        "detail", TaskRef(record.id, record.key, str(record.state), record.executor)
    )
    await pilot.pause()


async def _logs(pilot: Any) -> None:
    await select_task(pilot, "extract_clickstream")
    await pilot.press("l")
    await pilot.pause()
    await pilot.press("slash", *"product/17[0-9]", "enter")
    await pilot.pause()


async def _zoom(pilot: Any, number: str) -> None:
    await pilot.press(number, "z")
    await pilot.pause()


def _ti_id(app: ConsoleApp, task_id: str) -> int:
    return app.builder.store.resolve(f"{DAG}/{task_id}/{RUN}").id


@dataclass(frozen=True)
class Scene:
    """One screenshot: how to build the app and what to do before taking it."""

    name: str
    title: str
    build: Callable[[Path], ConsoleApp]
    run_before: Callable[[Any], Awaitable[None]] | None = None
    press: tuple[str, ...] = ()
    size: tuple[int, int] = SIZE


SCENES: tuple[Scene, ...] = (
    Scene("overview", "Overview under load", hosted_app, _overview),
    Scene("task_detail", "Task detail", hosted_app, _detail),
    Scene("logs", "Following a log, with a search", hosted_app, _logs),
    Scene("timeline", "Timeline (zoomed)", hosted_app, lambda pilot: _zoom(pilot, "4")),
    Scene("help", "Help", hosted_app, _overview, press=("question_mark",)),
    Scene(
        "workers",
        "The LocalExecutor's Workers panel (zoomed)",
        hosted_app,
        lambda pilot: _zoom(pilot, "5"),
    ),
    Scene("attached", "Attached to another engine", attached_app, _overview),
)


async def render(scene: Scene, home: Path) -> str:
    """The scene as SVG text."""
    app = scene.build(home)
    async with app.run_test(size=scene.size) as pilot:
        await pilot.pause()
        if scene.run_before is not None:
            await scene.run_before(pilot)
        if scene.press:
            await pilot.press(*scene.press)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        svg = app.export_screenshot(title=f"execconsole · {scene.title}")
    app.builder.close()
    app.operator.close()
    return svg


def main(argv: list[str] | None = None) -> int:
    """Render every scene (or those named) to <folder>/<name>.svg."""
    args = list(sys.argv[1:] if argv is None else argv)
    folder = Path(args.pop(0) if args else "screenshots")
    wanted = set(args)
    folder.mkdir(parents=True, exist_ok=True)  # save_screenshot does not create it
    for scene in SCENES:
        if wanted and scene.name not in wanted:
            continue
        with tempfile.TemporaryDirectory(prefix="execconsole-scene-") as home:
            svg = asyncio.run(render(scene, Path(home)))
        path = folder / f"{scene.name}.svg"
        path.write_text(svg, encoding="utf-8")
        print(f"{path}  {scene.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
