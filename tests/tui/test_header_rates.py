"""The header's two rates read at a glance: both are tries finished per second, each
labelled with the span it counts, whatever the pace (no /s here and /min there).

A store seeded at a fixed time: eight tries ended in the last minute, five of them in
the last five seconds (tests/tui/seeded.py). The console opens on it, as an operator
would; nothing else is pressed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.tui.header_bar import per_second
from tests.tui.seeded import run_app, seeded

WIDE = (160, 40)


def test_both_header_rates_are_per_second_and_say_what_span_they_count(tmp_path: Path) -> None:
    s = seeded(tmp_path / "home")
    s.submit([f"t{n}" for n in range(8)])
    for n, ended in enumerate([50, 40, 30, 4, 3.5, 3, 2, 1]):
        s.run_through(s.current(f"t{n}"), "local:101", ended + 0.1, ended)
    app = s.app()

    async def scenario(pilot: Any) -> None:
        header = app.dashboard.header
        minute = str(header.throughput_line.render())
        recent = str(header.executors_line.render())
        # 8 tries over the last minute; 5 over the last 5 seconds.
        assert minute == "finished 0.13/s over 1m · chart 5m", minute
        assert "finished 1.0/s over 5s" in recent, recent
        assert "/min" not in minute + recent

    run_app(app, WIDE, scenario)


def test_a_rate_keeps_its_unit_from_one_a_minute_to_hundreds_a_second() -> None:
    assert [per_second(r) for r in (0, 1 / 60, 0.5, 2.5, 312.4, 4321)] == [
        "0/s",
        "0.017/s",
        "0.5/s",
        "2.5/s",
        "312/s",
        "4,321/s",
    ]
