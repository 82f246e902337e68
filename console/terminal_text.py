"""Task output made safe to draw: every terminal control sequence taken out.

A task prints what it likes, and the console draws it on the operator's own
terminal. Anything a terminal acts on must not reach it: a clear-screen blanks
the console, an OSC title or OSC 52 sequence rewrites the window title or the
clipboard, SGR colours break the width of the text. This module removes, in
the grammar of ECMA-48 as xterm reads it:

- CSI: ESC [ (or U+009B), parameter bytes 0x30-0x3F, intermediate bytes
  0x20-0x2F, a final byte 0x40-0x7E (colours, cursor moves, erase);
- strings: OSC ESC ] (U+009D), DCS ESC P (U+0090), SOS ESC X (U+0098),
  PM ESC ^ (U+009E) and APC ESC _ (U+009F), up to BEL or ST (ESC \\, U+009C);
  one never ended ends with its line (window title, clipboard, hyperlinks);
- other ESC sequences: ESC, intermediate bytes 0x20-0x2F, a final byte
  0x30-0x7E (ESC 7, ESC c, ESC ( 0);
- every other control character: C0 but tab, line feed and carriage return,
  DEL, C1 (U+0080-U+009F), a lone ESC.

What is left holds no control character but ``\\t``, ``\\n`` and ``\\r``: the
caller decides what a line is (the log views break lines at ``\\r`` too, so a
progress bar's redraws show as lines). Colours are dropped, not kept as
styles: the log views draw plain lines. Rich's ``Text.from_ansi`` is no
substitute: it ends an OSC only at ST (a title ended by BEL takes the text up
to the next ST with it) and leaves DCS strings and C1 controls in.

Text read in pieces (a log followed as it grows) can end in the middle of a
sequence; ``StreamCleaner`` holds such an end back until the rest arrives.
"""

from __future__ import annotations

import re

# What follows OSC, DCS, SOS, PM, APC: the string and its end (BEL or ST), or up to the line end.
_STRING = r"[^\x07\x1b\x9c\n\r]* (?: \x07 | \x1b\\ | \x9c )?"
# Control-first, so the regex engine skips plain text at C speed: a 5 MB log with
# escapes on every line is cleaned in about 0.1 s, one without any in 0.03 s.
_SEQUENCE = re.compile(
    rf"""
    [\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]     # a control character (all but tab, LF, CR)
    (?:                                       # and, when it begins a sequence, the rest of it:
        (?<=\x1b) (?: \[ [0-?]* [ -/]* [@-~]   #   CSI: parameters, intermediates, final byte
                    | [\]PX^_] {_STRING}      #   OSC, DCS, SOS, PM, APC
                    | [ -/]* [0-~] )          #   ESC 7, ESC c, ESC ( 0
      | (?<=\x9b) [0-?]* [ -/]* [@-~]          #   CSI as one C1 character
      | (?<=[\x90\x98\x9d-\x9f]) {_STRING}     #   a string begun by a C1 character
    )?
    """,
    re.VERBOSE,
)
# A sequence begun at the very end of the text, its end not read yet.
_UNFINISHED = re.compile(
    r"""
    (?: (?:\x1b\[|\x9b) [0-?]* [ -/]*
      | (?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f]) [^\x07\x1b\x9c\n\r]* \x1b?
      | \x1b [ -/]*
    ) \Z
    """,
    re.VERBOSE,
)


def strip_controls(text: str) -> str:
    """``text`` without terminal control sequences, nor control characters but tab, LF and CR.

    Returns ``text`` itself when there is nothing to take out.
    """
    return _SEQUENCE.sub("", text)


class StreamCleaner:
    """``strip_controls`` for text that arrives in pieces.

    A sequence cut in two by a read would otherwise lose its start here and
    show its end (``1;32m``) with the next piece: the unfinished end of each
    piece waits for the next one.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """The clean text of ``text``, less an unfinished sequence at its end (kept for later)."""
        text = self._held + text
        self._held = ""
        # An unfinished sequence cannot span a line end: look only after the last one.
        line_start = max(text.rfind("\n"), text.rfind("\r")) + 1
        unfinished = _UNFINISHED.search(text, line_start)
        if unfinished is not None:
            self._held = unfinished.group()
            text = text[: unfinished.start()]
        return strip_controls(text)

    def reset(self) -> None:
        """Forget a held piece (the text is read anew from elsewhere)."""
        self._held = ""
