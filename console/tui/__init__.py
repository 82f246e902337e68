"""The operator console: a Textual app over the engine, the store and the executors.

Nothing here is imported by the headless commands; ``execconsole console`` and
``execconsole run`` import ``console.tui.launch`` only when they open it.
"""
