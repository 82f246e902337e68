"""Install the example executor plug-in (tests/plugins/execconsole_threads) for the tests.

The plug-in must reach execconsole the way a third-party package would: as an
installed distribution whose entry point names the executor. So it is
pip-installed (editable) into the interpreter running the tests, once, and
reused by later runs as long as it still points at this checkout.
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "plugins" / "execconsole_threads"
PLUGIN_DISTRIBUTION = "execconsole-threads"
PLUGIN_ENTRY_POINT = "threads"
PLUGIN_IMPORT_PATH = "execconsole_threads.executor:ThreadPoolTaskExecutor"


def plugin_installed_here() -> bool:
    """True if the plug-in's distribution is installed from this checkout's copy."""
    try:
        distribution = importlib.metadata.distribution(PLUGIN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    # pip records where an editable install came from; another checkout's
    # copy would load code these tests did not write.
    direct_url = distribution.read_text("direct_url.json")
    if not direct_url:
        return False
    url = json.loads(direct_url).get("url", "")
    return bool(url.startswith("file://") and Path(url[len("file://") :]) == PLUGIN_DIR)


def _can_build_offline() -> bool:
    """Whether setuptools here can build an editable wheel without fetching anything."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in version.split(".")[:2])
    if (major, minor) >= (70, 1):  # bdist_wheel moved into setuptools
        return True
    return major >= 64 and importlib.util.find_spec("wheel") is not None


def install_threads_plugin() -> None:
    """Make the plug-in installed and importable in this process; idempotent.

    Raises:
        RuntimeError: pip could not install it (pip's output is included).
    """
    lock_path = Path(tempfile.gettempdir()) / "execconsole-threads-plugin-install.lock"
    # pytest-xdist workers may all get here at once; pip must run only once.
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not plugin_installed_here():
            command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
            if _can_build_offline():
                command.append("--no-build-isolation")
            command += ["--editable", str(PLUGIN_DIR)]
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                raise RuntimeError(
                    f"could not install {PLUGIN_DIR}: {result.stderr.strip() or result.stdout}"
                )
        importlib.invalidate_caches()
    # Entry points are read from the metadata pip just wrote, but the .pth file
    # that puts the package on sys.path is only processed by new interpreters.
    # Appended, not prepended: the source directory also holds setuptools'
    # egg-info, which must not shadow the installed metadata.
    if importlib.util.find_spec("execconsole_threads") is None:
        sys.path.append(str(PLUGIN_DIR))
