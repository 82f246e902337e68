"""A Footer that redraws only when the keys it shows change.

Textual's Footer recomposes (removes and mounts a widget per key, restyles them
and lays the screen out again) every time a screen refreshes its bindings, and
the dashboard refreshes them whenever the selected task changes, i.e. on every
cursor move. Measured here with 10,000 queued tries, that recompose was most
of a key press's cost (a cursor move took 100-300 ms); moving between rows
whose keys are the same now costs only the rows' repaint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen


def shown_keys(screen: Screen[Any]) -> tuple[object, ...]:
    """What the footer would show for ``screen``: each shown key, its label and whether it is enabled."""
    app = screen.app
    shown = []
    for key, (_node, binding, enabled, tooltip) in screen.active_bindings.items():
        if binding.show or key == app.COMMAND_PALETTE_BINDING:
            shown.append(
                (
                    key,
                    binding.action,
                    binding.description,
                    app.get_key_display(binding),
                    binding.group,
                    binding.show,
                    enabled,
                    tooltip,
                )
            )
    return tuple(shown)


class StableFooter(Footer):
    """Footer whose keys are recomposed only when what it shows changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown_keys: tuple[object, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            keys = shown_keys(screen)
            if keys == self._shown_keys and self._bindings_ready:
                return
            self._shown_keys = keys
        super().bindings_changed(screen)
