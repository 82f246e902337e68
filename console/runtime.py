"""One construction path for config, store, executors and engine.

The CLI, the console and the tests all build the product through here, so
what runs under a test is what an operator runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from console.config import Config, load_config

if TYPE_CHECKING:
    from console.engine import Engine
    from executors.base import BaseExecutor
    from executors.loader import ExecutorSpec
    from store import Store


@dataclass
class Runtime:
    """What every command needs: the config and the choices made on the command line."""

    config: Config
    executor_override: str | None = None
    parallelism_override: int | None = None
    _store: Store | None = field(default=None, repr=False)
    _specs: tuple[str, list[ExecutorSpec]] | None = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        *,
        home: str | Path | None = None,
        store: str | Path | None = None,
        executor: str | None = None,
        parallelism: int | None = None,
    ) -> Runtime:
        if parallelism is not None and parallelism < 0:
            raise ValueError(f"--parallelism must be 0 (unlimited) or more, not {parallelism}")
        return cls(load_config(home, store=store), executor, parallelism)

    @property
    def executor_list(self) -> str:
        return (
            self.config.core.executor if self.executor_override is None else self.executor_override
        )

    def executor_specs(self) -> list[ExecutorSpec]:
        """The configured executors, parsed once per executor list (a run asks several times)."""
        from executors.loader import parse_executor_list

        text = self.executor_list
        if self._specs is None or self._specs[0] != text:
            self._specs = (text, parse_executor_list(text))
        return list(self._specs[1])

    def warm_up_executors(self) -> None:
        """Let each configured executor prepare this process to host it (see BaseExecutor.warm_up).

        A configuration error is left for building the executors to report.
        """
        from executors.loader import ExecutorConfigError, load_executor_class

        try:
            for spec in self.executor_specs():
                load_executor_class(spec).warm_up()
        except ExecutorConfigError:
            return

    @property
    def executor_names(self) -> list[str]:
        return [spec.name for spec in self.executor_specs()]

    @property
    def default_executor(self) -> str:
        return self.executor_names[0]

    @property
    def parallelism(self) -> int:
        if self.parallelism_override is not None:
            return self.parallelism_override
        return self.config.core.parallelism

    def store(self) -> Store:
        """The store (opened once, created and migrated on first use)."""
        if self._store is None:
            from store import Store

            self._store = Store(self.config.store_path)
        return self._store

    def existing_store(self) -> Store | None:
        """The store if its file exists, else None; never creates the file or its folder.

        For commands that only read: opening a missing store creates it, so a
        mistyped --store would leave an empty database behind and answer from
        it as if nothing had been submitted.
        """
        if self._store is None and self.store_is_missing():
            return None
        return self.store()

    def store_is_missing(self) -> bool:
        """True when the store file does not exist (opening it would create it)."""
        try:
            self.config.store_path.expanduser().stat()
        except (FileNotFoundError, NotADirectoryError):
            return True
        except OSError:
            return False  # e.g. a folder we may not search: opening reports it in its own words
        return False

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def build_executors(self, *, create_dirs: bool = True) -> dict[str, BaseExecutor]:
        """The configured executors, built, not started.

        ``create_dirs=False`` leaves the home's logs and claims folders as they
        are: a read-only console only reads what they hold, if anything.
        """
        from executors.loader import build_executors

        try:
            if create_dirs:
                self.config.ensure_dirs()
        except OSError as error:
            from console.config import ConfigError

            raise ConfigError(
                f"cannot create {error.filename}: {error.strerror}; the home holds the logs and "
                "claims of every run: point --home or EXECCONSOLE_HOME at a writable folder"
            ) from None
        specs = self.executor_specs()
        options = {spec.name: self.config.options_for(spec.name) for spec in specs}
        return build_executors(specs, self.parallelism, self.config.home, options)

    def build_engine(self, executors: dict[str, BaseExecutor] | None = None) -> Engine:
        from console.engine import Engine

        core = self.config.core
        return Engine(
            self.store(),
            executors if executors is not None else self.build_executors(),
            logs_dir=self.config.logs_dir,
            tick_interval=core.tick_interval,
            queued_timeout=core.queued_timeout,
            queued_retry_limit=core.queued_retry_limit,
            keep_parallelism=self.parallelism_override is not None,
        )
