"""Shell syntax in a command line: what only a shell acts on (pipes, redirections, ...).

A command written as one string but run without a shell is split into words:
``echo hi | tr a-z A-Z > out`` would print its words and write no file. The
new-task form and workflow files use this to say so before anything runs.
"""

from __future__ import annotations

import re

# Shell operators, longest first: found outside quotes, they mean a shell is wanted.
SHELL_OPERATORS = ("&&", "||", ">>", "<<", "&>", ">&", "|", ";", "&", ">", "<", "(", ")")


def shell_syntax(command_line: str) -> str | None:
    """The first piece of shell syntax in ``command_line`` that only a shell acts on, or None.

    Pipes, redirections, ``;``, ``&``, ``&&``, ``||``, ``$(...)`` and backtick
    substitutions, ``$VARS``; quoted as a shell would quote them, they are
    plain words (``echo 'a|b'``) and not found. Globs are left alone: without
    a shell, ``find . -name *.py`` means what it says.
    """
    quote: str | None = None
    index = 0
    while index < len(command_line):
        char = command_line[index]
        if quote == "'":
            if char == "'":
                quote = None
            index += 1
            continue
        if char == "\\":
            index += 2  # an escaped character is a plain one
            continue
        if char == '"':
            quote = None if quote == '"' else '"'
        elif char == "'" and quote is None:
            quote = "'"
        elif char == "`":
            return "`"
        elif char == "$":
            following = command_line[index + 1 : index + 2]
            if following in ("(", "{"):
                return "$" + following
            name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", command_line[index + 1 :])
            if name:
                return "$" + name.group()
        elif quote is None:
            for operator in SHELL_OPERATORS:
                if command_line.startswith(operator, index):
                    return operator
        index += 1
    return None
