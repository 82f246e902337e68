"""Small runs, whole commands: one task, and a chain of tasks each waiting for the one before.

What an operator waits for when a workflow is small: start-up, the hand-off
from one task to the next, and the way out. Each round runs, in rotating
order, four whole commands timed from spawn to exit:

- ``one``: ``execconsole run one.toml --headless`` (one ``/bin/true`` task) on
  a fresh EXECCONSOLE_HOME, against ``python benchmarks/baseline_spawn.py 1 1``;
- ``chain``: the same for a workflow of N ``/bin/true`` tasks, each with the
  previous one as its upstream, against ``baseline_spawn.py N 1`` (N spawns
  one after another).

The ratios product/baseline are taken per round. ``per link`` is what each
further task of the chain adds: (chain - one) / (N - 1).

    python benchmarks/bench_small_runs.py                 # chain of 20, 7 rounds
    python benchmarks/bench_small_runs.py --module        # as `python -m console`
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PYTHON,
    Rounds,
    Summary,
    check_tree,
    clean_env,
    compile_product,
    console_script,
    machine,
    remove_after_last_round,
    timed_command,
    write_report,
)

HERE = Path(__file__).resolve().parent


def write_chain(path: Path, tasks: int) -> None:
    lines = ['id = "chain"', ""]
    for index in range(tasks):
        lines += ["[[task]]", f'id = "c{index:03d}"', 'command = ["/bin/true"]']
        if index:
            lines.append(f'upstream = ["c{index - 1:03d}"]')
        lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", type=int, default=20, help="tasks in the chain")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--module",
        action="store_true",
        help="start the product as `python -m console` instead of the console script",
    )
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    compile_product()

    work = Path(tempfile.mkdtemp(prefix="bench-small-"))
    remove_after_last_round(work)
    one, chain = work / "one.toml", work / "chain.toml"
    write_chain(one, 1)
    write_chain(chain, args.chain)
    product_argv = [PYTHON, "-m", "console"] if args.module else [console_script()]
    check_tree(clean_env())

    def product(workflow: Path) -> float:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
        return timed_command(
            [*product_argv, "run", str(workflow), "--headless"],
            env=clean_env(EXECCONSOLE_HOME=str(home)),
            cwd=work,
        )

    def baseline(tasks: int) -> float:
        return timed_command(
            [PYTHON, str(HERE / "baseline_spawn.py"), str(tasks), "1"], env=clean_env(), cwd=work
        )

    cases = {
        "product_one": lambda: product(one),
        "baseline_one": lambda: baseline(1),
        "product_chain": lambda: product(chain),
        "baseline_chain": lambda: baseline(args.chain),
    }
    print(f"one task, and a chain of {args.chain}:", file=sys.stderr)
    rounds = Rounds(cases, args.rounds).run()
    links = args.chain - 1

    def per_link(chain_case: str, one_case: str) -> Summary:
        """What each further task of the chain added, per round, in milliseconds."""
        pairs = zip(rounds.results[chain_case], rounds.results[one_case], strict=True)
        return Summary([(chained - alone) / links * 1000 for chained, alone in pairs])

    product_link = per_link("product_chain", "product_one")
    baseline_link = per_link("baseline_chain", "baseline_one")
    report = {
        "benchmark": "small_runs",
        "machine": machine(),
        "chain": args.chain,
        "rounds": args.rounds,
        "commands": {
            "product": f"EXECCONSOLE_HOME=<fresh dir> {' '.join(product_argv)} run WORKFLOW --headless",
            "baseline": f"{PYTHON} benchmarks/baseline_spawn.py N 1",
        },
        "results": {
            **{name: rounds.summary(name).as_dict() for name in cases},
            "one_ratio": rounds.ratio("product_one", "baseline_one").as_dict(3),
            "chain_ratio": rounds.ratio("product_chain", "baseline_chain").as_dict(3),
            "per_link_ms": product_link.as_dict(1),
            "per_link_baseline_ms": baseline_link.as_dict(1),
        },
    }
    print(
        f"  one task  product {rounds.summary('product_one').text()}\n"
        f"            baseline {rounds.summary('baseline_one').text()}\n"
        f"  chain     product {rounds.summary('product_chain').text()}\n"
        f"            baseline {rounds.summary('baseline_chain').text()}\n"
        f"  per link  product {product_link.text(unit=' ms', digits=1)}\n"
        f"            baseline {baseline_link.text(unit=' ms', digits=1)}",
        file=sys.stderr,
    )
    write_report(args.json, report)


if __name__ == "__main__":
    main()
