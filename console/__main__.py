"""``python -m console``: the same as the ``execconsole`` command."""

from console.cli.main import console_script

console_script()
