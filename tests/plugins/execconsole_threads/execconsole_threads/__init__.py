"""An example third-party executor for execconsole: tasks run from a thread pool.

Kept import-light on purpose: listing executors or parsing ``--executor`` must
not pull in Typer or Textual, so this package exports nothing itself.
"""
