"""Task output made safe to draw: the sanitiser, and each reader of a log that uses it.

Real files throughout; the escape sequences are the ones a task printed when
exploratory testing found them reaching the operator's terminal raw.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.task_log import clean_line, last_line_of, read_task_log
from console.terminal_text import StreamCleaner, strip_controls
from console.tui.log_source import LogFollower, search_before
from store.records import TaskRecord

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        # CSI: SGR colours, erase, cursor moves, private modes, intermediate bytes.
        (f"{ESC}[31mred{ESC}[0m {ESC}[1;32mbold green{ESC}[m", "red bold green"),
        (f"{ESC}[2J{ESC}[Hclear screen 1", "clear screen 1"),
        (f"a{ESC}[5Ab{ESC}[10;20Hc{ESC}[K", "abc"),
        (f"{ESC}[?25l{ESC}[?1049hhidden cursor{ESC}[?25h", "hidden cursor"),
        (f"{ESC}[2 qsteady{ESC}[0 q", "steady"),  # intermediate byte (cursor style)
        (f"{ESC}[38;2;255;0;0mtruecolour{ESC}[38:5:196m", "truecolour"),
        # OSC, ended by BEL or by ST: window title, clipboard, hyperlink.
        (f"{ESC}]0;TITLE HACK{BEL}after", "after"),
        (f"{ESC}]2;window{ST}named", "named"),
        (f"{ESC}]52;c;aGVsbG8={BEL}clipboard", "clipboard"),
        (f"{ESC}]8;;https://example.org{ST}link{ESC}]8;;{ST}", "link"),
        # An OSC left open ends with its line, not with the rest of the log.
        (f"{ESC}]0;never ended\nnext line", "\nnext line"),
        # DCS, SOS, PM, APC strings.
        (f"{ESC}P1$qm{ST}dcs", "dcs"),
        (f"{ESC}Xsos{ST}{ESC}^pm{ST}{ESC}_Gf=100;AAAA{ST}strings", "strings"),
        # Two-byte ESC sequences and nF ones.
        (f"{ESC}7saved{ESC}8 {ESC}c{ESC}M{ESC}=reset", "saved reset"),
        (f"{ESC}(0lqk{ESC}(B{ESC}#8", "lqk"),
        # The 8-bit (C1) forms: CSI, OSC, DCS, ST.
        ("\x9b31mc1 csi\x9b0m", "c1 csi"),
        ("\x9d0;title\x9cc1 osc", "c1 osc"),
        ("\x90dcs\x9cc1 dcs", "c1 dcs"),
        # Stray controls: BEL, backspace, shift out/in, DEL, C1 NEL, a lone ESC.
        (
            f"bell{BEL} back\bspace \x0eshift\x0f del\x7f nel\x85 lone{ESC}",
            "bell backspace shift del nel lone",
        ),
        ("nul\x00 vt\x0b ff\x0c", "nul vt ff"),
    ],
)
def test_every_kind_of_control_sequence_is_removed(raw: str, shown: str) -> None:
    assert strip_controls(raw) == shown


def test_tab_and_line_breaks_are_kept_and_plain_text_is_returned_as_is() -> None:
    assert strip_controls("a\tb\r\nc\rd\n") == "a\tb\r\nc\rd\n"
    plain = "plain line: nothing to take out, not even é or 漢字\n" * 3
    assert strip_controls(plain) is plain


def test_a_sequence_cut_in_two_by_a_read_is_removed_whole() -> None:
    text = f"{ESC}[31mred{ESC}[0m {ESC}[1;32mbold{ESC}[0m {ESC}]0;TITLE{ESC}\\end\n"
    for cut in range(len(text) + 1):
        cleaner = StreamCleaner()
        assert cleaner.feed(text[:cut]) + cleaner.feed(text[cut:]) == "red bold end\n", cut


def test_the_running_panels_last_line_has_no_osc_and_skips_a_line_of_escapes(
    tmp_path: Path,
) -> None:
    log = tmp_path / "task.log"
    log.write_text(
        f"{ESC}[2J{ESC}[Hclear screen 16{ESC}]0;TITLE HACK{BEL} {ESC}[5A up\n{ESC}[2J{ESC}[H\n"
    )
    assert last_line_of(str(log)) == "clear screen 16  up"
    assert clean_line(f"10%\r50%\r{ESC}[32m90%{ESC}[0m") == "90%"  # a progress bar: its last state


def test_the_detail_tail_is_plain_text_from_a_whole_line(
    tmp_path: Path, record: TaskRecord
) -> None:
    log = tmp_path / "task.log"
    line = f"{ESC}[1;32mgreen{ESC}[0m {ESC}]52;c;aGVsbG8={BEL}line\n"
    log.write_text(line * 100)
    text, source, size = read_task_log({}, record, max_bytes=len(line) * 10 + 5)
    assert text == "green line\n" * 10  # not the end of the line the read began inside
    assert (source, size) == (str(log), len(line) * 100)


def test_the_follower_shows_plain_text_even_when_a_read_ends_inside_a_sequence(
    tmp_path: Path, record: TaskRecord
) -> None:
    log = tmp_path / "task.log"
    log.write_text(f"first {ESC}[1;3")
    follower = LogFollower({}, record)
    first = follower.poll()
    assert first is not None and first.text == "first "
    with log.open("a") as handle:
        handle.write(f"2mgreen{ESC}[0m {ESC}]0;TITLE HACK{BEL}\n")
    second = follower.poll()
    assert second is not None and second.text == "green \n"


def test_search_before_matches_the_text_as_shown(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(
        f"{ESC}[31mred 1{ESC}[0m {ESC}[1;32mbold green{ESC}[0m\n"
        f"{ESC}]0;TITLE HACK{BEL}titled\n"
        "10%\r100% done\n"
    )
    end = log.stat().st_size

    def found(pattern: str) -> tuple[int, tuple[tuple[int, str], ...]]:
        earlier = search_before(str(log), end, re.compile(pattern))
        return earlier.count, earlier.first

    assert found("red 1 bold") == (1, ((1, "red 1 bold green"),))
    assert found("HACK|31m") == (0, ())
    assert found("^100%") == (1, ((3, "100% done"),))  # a carriage return starts a line


@pytest.fixture
def record(tmp_path: Path) -> TaskRecord:
    """A try whose log is ``tmp_path/task.log``, on an executor not configured here."""
    values: dict[str, object] = dict.fromkeys(TaskRecord.__dataclass_fields__)
    values.update(
        dag_id="output",
        task_id="escapes",
        run_id="manual__1",
        map_index=-1,
        try_number=1,
        executor="elsewhere",
        log_path=str(tmp_path / "task.log"),
    )
    return TaskRecord(**values)  # type: ignore[arg-type]
