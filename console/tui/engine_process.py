"""The console's own engine, in a child process of its own.

The console never runs the engine in its own interpreter: Textual's rendering
and the engine's loop would share one GIL, and dispatch slowed to about 0.7 of
the headless engine's pace. When the console opens a store no engine owns, it
starts this module as a child process and attaches to it, as it attaches to
any other engine: the panels read the store, keys write operator requests.
What the store does not carry goes through two pipes:

::

    console ──control pipe──► engine process     {"op": "go" | "drain" | "key" | "stop", ...}
    console ◄──status pipe─── engine process     {"type": "ready" | "status" | "result" | "stopped", ...}

- **ready** once the engine holds the store's lease (or ``owned``/``error``
  if it cannot start); **status** four times a second (an ``EngineStatus``:
  pause and drain state, executors' slots, worker processes); **result** of
  an executor's key run on the engine's thread; **stopped** with how it ended.
- **stop** carries the operator's answer to "tasks are running, quit?":
  ``finish`` (let them end, bounded), ``kill``, or ``detach`` (leave them for
  the next engine to adopt). **drain** starts nothing new and ends the
  engine once nothing is in flight.
- The control pipe is also a lifeline: if the console goes away, even by
  SIGKILL, the engine reads end-of-file and shuts down as on ``finish``.

The engine process runs in a session of its own, so the terminal's signals
(Ctrl+C before the UI starts, SIGHUP when the terminal closes) reach only the
console, which then tells the engine what to do. Its stdout and stderr go to
``<home>/engine.log``; its pipes are not inherited by the processes it starts,
so the console learns of its end even if workers outlive it. SIGTERM or
SIGINT sent to it directly behave as for ``execconsole scheduler`` (finish;
a second one kills).

This module is headless (no Textual): ``python -m console.tui.engine_process``.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.engine_status import EngineStatus

if TYPE_CHECKING:
    from console.engine import Engine
    from console.runtime import Runtime

log = logging.getLogger(__name__)

STATUS_INTERVAL = 0.25
HOLD_SECONDS = 10.0
"""Longest a held engine waits for the console's go before dispatching anyway."""
SHUTDOWN_GRACE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 60.0
# Stop is bounded in the engine (SHUTDOWN_GRACE_SECONDS for "finish"); beyond
# this margin the console stops waiting and kills the engine process.
STOP_MARGIN_SECONDS = 30.0
STATUS_BUFFER_LIMIT = 256 * 1024
LOG_NAME = "engine.log"
FINISH, KILL, DETACH = "finish", "kill", "detach"


class EngineStartFailed(Exception):
    """The engine process could not start; the message says why (one line)."""


class EngineOwned(EngineStartFailed):
    """Another engine took the store's lease first."""


# ---- the console's side --------------------------------------------------------------
class ChildEngine:
    """An engine process started by this console, and the pipes to talk to it.

    Build it with ``ChildEngine.spawn``, then ``wait_ready``. ``on_exit`` (set
    by the console) is called on a thread of this object's when the process
    has ended, for whatever reason.
    """

    def __init__(self, command: Sequence[str], log_path: Path, env: dict[str, str]) -> None:
        self.command = list(command)
        self.log_path = log_path
        self.env = env
        self.on_exit: Callable[[ChildEngine], None] | None = None
        self.returncode: int | None = None
        self.stopped: dict[str, Any] | None = None  # its last word ("stopped"), if any
        self.stopping = False  # the console asked it to stop
        self.drain_requested = False
        self._status: EngineStatus | None = None
        self._failure: EngineStartFailed | None = None
        self._ready = threading.Event()
        self._exited = threading.Event()
        self._replies: dict[int, Callable[[bool, str], None]] = {}
        self._next_reply = 0
        self._lock = threading.Lock()
        control_read, control_write = os.pipe()
        status_read, status_write = os.pipe()
        try:
            with open(log_path, "ab") as log_file:
                self.process = subprocess.Popen(
                    [
                        *self.command,
                        "--control-fd",
                        str(control_read),
                        "--status-fd",
                        str(status_write),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                    pass_fds=(control_read, status_write),
                    start_new_session=True,  # terminal signals reach the console only
                    env=env,
                )
        except BaseException:
            for fd in (control_read, control_write, status_read, status_write):
                os.close(fd)
            raise
        os.close(control_read)
        os.close(status_write)
        self._control = os.fdopen(control_write, "wb", buffering=0)
        self._reader = threading.Thread(
            target=self._read, args=(status_read,), name="engine-status", daemon=True
        )
        self._reader.start()
        self._waiter = threading.Thread(target=self._wait, name="engine-wait", daemon=True)
        self._waiter.start()

    @classmethod
    def spawn(cls, runtime: Runtime, *, hold: bool = False) -> ChildEngine:
        """Start the engine process on ``runtime``'s store, with its executors and parallelism.

        ``hold``: dispatch nothing until ``release()`` (the console calls it once
        its first screen is drawn), or HOLD_SECONDS at most.
        """
        config = runtime.config
        config.ensure_dirs()
        command = [
            sys.executable,
            "-m",
            "console.tui.engine_process",
            "--home",
            str(config.home),
            "--store",
            str(config.store_path),
        ]
        if runtime.executor_override is not None:
            command += ["--executor", runtime.executor_override]
        if runtime.parallelism_override is not None:
            command += ["--parallelism", str(runtime.parallelism_override)]
        if hold:
            command.append("--hold")
        env = dict(os.environ)
        # The engine imports what the console can import (executors named by
        # import path, plug-ins): the console's own module path, cwd first.
        paths = [os.getcwd(), *(p for p in sys.path if p and os.path.isdir(p))]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return cls(command, config.home / LOG_NAME, env)

    def respawn_command(self) -> list[str]:
        """This engine's command line, without the hold: a restarted engine dispatches at once."""
        return [part for part in self.command if part != "--hold"]

    def respawn(self) -> ChildEngine:
        """A new engine process like this one (after this one ended)."""
        return ChildEngine(self.respawn_command(), self.log_path, self.env)

    # ---- what the console asks --------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return not self._exited.is_set()

    @property
    def drained(self) -> bool:
        return bool(self.stopped and self.stopped.get("drained"))

    def status(self) -> EngineStatus | None:
        """The engine's latest status; None before its first report and after it ended."""
        return None if self._exited.is_set() else self._status

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until the engine holds the store.

        Raises:
            EngineOwned: another engine owns the store (this process has exited).
            EngineStartFailed: the engine could not start, or not within ``timeout``.
        """
        if not self._ready.wait(timeout):
            self.stop(KILL, timeout=5)
            raise EngineStartFailed(f"the engine did not start within {timeout:g}s")
        if self._failure is not None:
            self._exited.wait(5)
            raise self._failure
        if self._exited.is_set():
            raise EngineStartFailed(self.exit_reason())

    def release(self) -> None:
        """Let a held engine start dispatching (a no-op for one that was not held)."""
        self._send({"op": "go"})

    def drain(self) -> None:
        """Start nothing new; the engine ends (and says it drained) once nothing runs."""
        self.drain_requested = True
        self._send({"op": "drain"})

    def run_key(
        self,
        executor: str,
        key: str,
        description: str,
        task: Any,
        reply: Callable[[bool, str], None],
    ) -> bool:
        """Run an executor's key binding on the engine's thread; ``reply(ok, message)`` follows.

        False if the engine is gone (no reply comes).
        """
        with self._lock:
            self._next_reply += 1
            number = self._next_reply
            self._replies[number] = reply
        sent = self._send(
            {
                "op": "key",
                "id": number,
                "executor": executor,
                "key": key,
                "description": description,
                "task": list(task) if task is not None else None,
            }
        )
        if not sent:
            with self._lock:
                self._replies.pop(number, None)
        return sent

    def stop(self, mode: str = FINISH, timeout: float | None = None) -> int | None:
        """Tell the engine how to stop, wait for it to end, and return its exit code.

        mode "finish" lets running tries end (bounded), "kill" kills them,
        "detach" leaves them to the next engine. If it has not ended within
        ``timeout`` (default: its own bound plus a margin), it is killed.
        """
        self.stopping = True
        self._send({"op": "stop", "mode": mode})
        with self._lock:
            try:
                self._control.close()  # the lifeline: end-of-file means "stop" too
            except OSError:
                pass
        if timeout is None:
            timeout = SHUTDOWN_GRACE_SECONDS + STOP_MARGIN_SECONDS
        if not self._exited.wait(timeout):
            log.error("engine pid %s did not stop within %gs; killing it", self.pid, timeout)
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._exited.wait(10)
        return self.returncode

    def exit_reason(self) -> str:
        """Why the process ended, in words (for the console's error line)."""
        code = self.returncode
        if code is None:
            return f"the engine (pid {self.pid}) is running"
        if code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
            return f"the engine (pid {self.pid}) {how}"
        how = f"exited with code {code}"
        last = _last_log_line(self.log_path) if code else ""
        return f"the engine (pid {self.pid}) {how}" + (
            f": {last} (see {self.log_path})" if last else ""
        )

    # ---- the pipes --------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> bool:
        data = (json.dumps(message) + "\n").encode()
        with self._lock:
            if self._control.closed:
                return False
            try:
                self._control.write(data)
            except (BrokenPipeError, OSError):
                return False
        return True

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as stream:
            for line in stream:
                try:
                    message = json.loads(line)
                    self._handle(message)
                except Exception:  # a torn or foreign line must not stop the reader
                    log.exception("bad line from the engine process: %r", line[:200])

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "status":
            self._status = EngineStatus.from_json(message["status"])
        elif kind == "ready":
            self._ready.set()
        elif kind in ("owned", "error"):
            error = EngineOwned if kind == "owned" else EngineStartFailed
            self._failure = error(str(message.get("message", kind)))
            self._ready.set()
        elif kind == "result":
            with self._lock:
                reply = self._replies.pop(int(message["id"]), None)
            if reply is not None:
                reply(bool(message["ok"]), str(message["message"]))
        elif kind == "stopped":
            self.stopped = message

    def _wait(self) -> None:
        self.returncode = self.process.wait()
        self._reader.join(2.0)  # its last words ("stopped") arrive before end-of-file
        with self._lock:
            replies, self._replies = list(self._replies.values()), {}
        self._exited.set()
        self._ready.set()
        for reply in replies:
            reply(False, "the engine stopped before it answered")
        if self.on_exit is not None:
            try:
                self.on_exit(self)
            except Exception:
                log.exception("on_exit failed")


def _last_log_line(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 4096))
            lines = stream.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""


# ---- the engine's side ----------------------------------------------------------------
class _StatusChannel:
    """Lines to the console, written without ever blocking the engine.

    The pipe is non-blocking: what does not fit waits in a buffer for the next
    flush; status lines are dropped (the next one supersedes them) while the
    console is not reading, answers and last words never are.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.buffer = bytearray()
        self.broken = False

    def send(self, message: dict[str, Any], *, droppable: bool = False) -> None:
        if self.broken or (droppable and len(self.buffer) > STATUS_BUFFER_LIMIT):
            return
        self.buffer += (json.dumps(message) + "\n").encode()
        self.flush()

    def flush(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        while self.buffer and not self.broken:
            try:
                written = os.write(self.fd, self.buffer)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.01)
                continue
            except OSError as error:
                if error.errno not in (errno.EPIPE, errno.EBADF):
                    log.warning("status pipe: %s", error)
                self.broken = True  # the console is gone
                return
            del self.buffer[:written]


class _Controls:
    """Reads the console's control pipe on a thread; carries requests to the engine's thread."""

    def __init__(self, engine: Engine, fd: int, channel: _StatusChannel) -> None:
        self.engine = engine
        self.fd = fd
        self.channel = channel
        self.mode: str | None = None
        self.thread = threading.Thread(target=self._read, name="engine-control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _read(self) -> None:
        with os.fdopen(self.fd, "rb") as stream:
            for line in stream:
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("bad control line %r", line[:200])
                    continue
                op = message.get("op")
                if op == "stop":
                    mode = message.get("mode")
                    self.mode = mode if mode in (FINISH, KILL, DETACH) else FINISH
                    self.engine.request_stop()
                    return
                if op == "go":
                    self.engine.call_soon(lambda: release_hold(self.engine))
                elif op == "drain":
                    self.engine.call_soon(lambda: start_draining(self.engine))
                elif op == "key":
                    self.engine.call_soon(self._key_call(message))
        # End of file without a word: the console is gone; let running tries finish.
        if self.mode is None:
            log.warning("the console went away; stopping, letting running tasks finish")
            self.mode = FINISH
        self.engine.request_stop()

    def _key_call(self, message: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            ok, text = run_key_binding(self.engine, message)
            self.channel.send(
                {"type": "result", "id": message.get("id"), "ok": ok, "message": text}
            )

        return run


def release_hold(engine: Engine) -> None:
    """Let dispatch begin: the console is on screen (or gave up waiting for it)."""
    engine.held = False


def start_draining(engine: Engine) -> None:
    """Stop dispatching; tries handed out but not started go back to the store, as on pause."""
    engine.drain()
    engine.note("draining: nothing new starts; the engine stops when running tasks end")


def run_key_binding(engine: Engine, message: dict[str, Any]) -> tuple[bool, str]:
    """Run an executor's key binding (named by key and description) on the engine's thread."""
    from executors.task_key import TaskKey

    name = str(message.get("executor"))
    executor = engine.executors.get(name)
    if executor is None:
        return False, f"no executor {name!r} in this engine"
    binding = next(
        (
            b
            for b in executor.key_bindings()
            if b.key == message.get("key") and b.description == message.get("description")
        ),
        None,
    )
    if binding is None:
        return False, f"executor {name!r} has no key {message.get('key')!r}"
    task = message.get("task")
    key = TaskKey(*task) if task else None
    try:
        text = binding.action(executor, key)
    except Exception as error:  # a plug-in bug must not stop the engine
        log.exception("key %s of %s failed", binding.key, name)
        return False, f"{binding.description} failed: {error}"
    return True, text or f"{binding.description}: done"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.tui.engine_process")
    parser.add_argument("--home", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--executor")
    parser.add_argument("--parallelism", type=int)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument(
        "--hold",
        action="store_true",
        help="dispatch nothing until the console sends go (at most HOLD_SECONDS)",
    )
    args = parser.parse_args(argv)
    # Nothing this engine starts may hold the console's pipes.
    os.set_inheritable(args.control_fd, False)
    os.set_inheritable(args.status_fd, False)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s engine[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    # The console handles the terminal; a hang-up is its business, not ours.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    channel = _StatusChannel(args.status_fd)

    from console.headless import StopSignals
    from console.runtime import Runtime
    from store import StoreOwned

    try:
        runtime = Runtime.load(
            home=args.home, store=args.store, executor=args.executor, parallelism=args.parallelism
        )
        engine = runtime.build_engine()
        engine.start()  # forks the executors' workers before any thread of ours exists
    except StoreOwned as error:
        channel.send({"type": "owned", "message": str(error)})
        channel.flush(wait=5)
        return 3
    except Exception as error:
        log.exception("the engine could not start")
        channel.send({"type": "error", "message": f"{type(error).__name__}: {error}"})
        channel.flush(wait=5)
        return 1
    # The console draws its first screen while this engine starts; dispatching
    # meanwhile would race its start-up for the CPU (and it would miss the
    # first tries). Held until it says go, and never longer than HOLD_SECONDS.
    engine.held = args.hold
    hold_until = time.monotonic() + HOLD_SECONDS
    log.info("engine for the console on %s", runtime.config.store_path)
    channel.send({"type": "ready", "pid": os.getpid()})
    controls = _Controls(engine, args.control_fd, channel)
    signals = StopSignals(engine)
    drained = False
    failed = False
    with signals:
        controls.start()
        try:
            last_status = 0.0
            while not engine._stop.is_set():
                engine.iterate()
                now = time.monotonic()
                if engine.held and now >= hold_until:
                    log.warning("the console did not say go within %gs; dispatching", HOLD_SECONDS)
                    release_hold(engine)
                if now - last_status >= STATUS_INTERVAL:
                    last_status = now
                    channel.send(
                        {"type": "status", "status": EngineStatus.from_engine(engine).to_json()},
                        droppable=True,
                    )
                elif channel.buffer:
                    channel.flush()
                if engine.draining and not engine.in_flight:
                    drained = True
                    break
        except Exception:
            log.exception("the engine loop stopped")
            failed = True
        finally:
            if drained:
                mode = FINISH
            elif signals.count > 1:
                mode = KILL
            else:
                mode = controls.mode or signals.shutdown_mode
            in_flight = len(engine.in_flight)
            # Running, as the console counts them: not those handed out and not
            # started (shutdown gives them back to the store in every mode).
            try:
                running = sum(
                    s.running for s in EngineStatus.from_engine(engine).executors.values()
                )
            except Exception:
                log.exception("could not count running tries")
                running = in_flight
            log.info("stopping (%s) with %d tries in flight, %d running", mode, in_flight, running)
            engine.shutdown(mode, timeout=0.0 if mode == KILL else SHUTDOWN_GRACE_SECONDS)
            runtime.close()
            channel.send(
                {
                    "type": "stopped",
                    "mode": mode,
                    "drained": drained,
                    "in_flight": in_flight,
                    "running": running,
                    "failed": failed,
                }
            )
            channel.flush(wait=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
