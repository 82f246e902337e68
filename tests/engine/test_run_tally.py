"""A run's progress tally, fed by a real engine's commits, against the exact count of the store.

``run --headless`` shows a run's progress from a ``RunTally`` instead of
counting the run's rows again and again. Whenever the tally does not say it is
stale, it must equal ``Store.run_progress``: every tick of a real run is
checked here, with retries, failures for good and the upstream failures they
cause.
"""

from __future__ import annotations

from pathlib import Path

from console import actions
from console.run_tally import RunTally
from console.workflow import parse_workflow
from tests.engine.conftest import drive

# Fails on its first two tries, succeeds on its third: a file counts the tries.
FLAKY = 'n=$(cat {0} 2>/dev/null || echo 0); echo $((n+1)) > {0}; [ "$n" -ge 2 ]'


def workflow(tmp_path: Path, *, with_failures: bool) -> str:
    lines = ['id = "tally"']
    for index in range(12):
        lines += ["[[task]]", f'id = "ok{index}"', 'command = ["/bin/true"]']
    lines += [
        "[[task]]",
        'id = "flaky"',
        f"command = '{FLAKY.format(tmp_path / 'flaky.count')}'",
        "shell = true",
        "retries = 3",
        "[[task]]",
        'id = "after_flaky"',
        'command = ["/bin/true"]',
        'upstream = ["flaky"]',
    ]
    if with_failures:
        lines += [
            "[[task]]",
            'id = "broken"',
            'command = ["/bin/false"]',
            "retries = 1",
            "[[task]]",
            'id = "below_broken"',
            'command = ["/bin/true"]',
            'upstream = ["broken"]',
            "[[task]]",
            'id = "further_below"',
            'command = ["/bin/true"]',
            'upstream = ["below_broken"]',
        ]
    return "\n".join(lines) + "\n"


def run_and_check(make_engine, tmp_path: Path, *, with_failures: bool) -> tuple[RunTally, int, int]:  # type: ignore[no-untyped-def]
    engine = make_engine(parallelism=2)
    store = engine.store
    spec = parse_workflow(workflow(tmp_path, with_failures=with_failures))
    run_id, keys = actions.submit_workflow(store, spec, default_executor="local")
    tally = RunTally(spec.dag_id, run_id, {"scheduled": len(keys)})
    store.commit_listeners.append(tally.follow)
    checked = stale = 0

    def over() -> bool:
        nonlocal checked, stale
        exact = store.run_progress(spec.dag_id, run_id)
        if tally.stale:
            stale += 1
            tally.reset(exact)
        else:
            assert tally.counts == exact, f"tally {tally.counts} != store {exact}"
            checked += 1
        return exact["success"] + exact["failed"] + exact["upstream_failed"] == len(keys)

    drive(engine, over)
    store.commit_listeners.remove(tally.follow)
    assert tally.counts == store.run_progress(spec.dag_id, run_id)
    return tally, checked, stale


def test_a_run_of_successes_and_retries_is_followed_exactly_without_a_recount(
    make_engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tally, checked, stale = run_and_check(make_engine, tmp_path, with_failures=False)
    assert stale == 0, "nothing in this run should need the rows counted again"
    assert checked > 5
    assert tally.counts["success"] == 14 and tally.counts["retried"] == 2


def test_a_failure_that_cascades_makes_the_tally_stale_and_a_recount_puts_it_right(
    make_engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tally, checked, stale = run_and_check(make_engine, tmp_path, with_failures=True)
    assert stale >= 1, (
        "the upstream failures are made in SQL: the tally must say it cannot see them"
    )
    assert tally.counts["failed"] == 1 and tally.counts["upstream_failed"] == 2
    assert tally.counts["retried"] == 3  # flaky twice, broken once
    assert checked > 5
