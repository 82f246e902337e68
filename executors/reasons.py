"""Turn an exit status into the one-line reason an operator reads."""

from __future__ import annotations

import signal as signal_module


def signal_name(signum: int) -> str:
    try:
        return signal_module.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def reason_for_exit(returncode: int) -> str | None:
    """None for success; otherwise why the process ended.

    ``subprocess`` reports death by signal as a negative return code; a shell
    reports it as 128 + signal number. Both read as "killed by SIGX".
    """
    if returncode == 0:
        return None
    if returncode < 0:
        return reason_for_signal(-returncode)
    return f"exited with code {returncode}"


def reason_for_signal(signum: int) -> str:
    name = signal_name(signum)
    if signum == signal_module.SIGKILL:
        return f"killed by {name} — possibly out of memory"
    return f"killed by {name}"
