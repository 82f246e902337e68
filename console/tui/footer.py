"""A Footer that redraws only when the keys it shows change, and shows only keys that fit.

Textual's Footer recomposes (removes and mounts a widget per key, restyles them
and lays the screen out again) every time a screen refreshes its bindings, and
the dashboard refreshes them whenever the selected task changes, i.e. on every
cursor move. Measured here with 10,000 queued tries, that recompose was most
of a key press's cost (a cursor move took 100-300 ms); moving between rows
whose keys are the same now costs only the rows' repaint.

A key greyed out or offered again (k on a try that has finished, s and f as the
cursor moves between a waiting and a handed-out try) changes no entry's width:
its entry is only restyled, and nothing is recomposed.

Textual's Footer also lets its keys run under the command palette's key,
docked at the right: at 80 columns an entry was cut in the middle of a word
("k Kil▏^p palette"). Here an entry is shown whole or not at all: those that
do not fit, and every one after them, are hidden (keys.py lists the most
useful first; ? and the palette show them all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import events
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen


# Where a key's "enabled" flag is in the tuples shown_keys returns.
_ENABLED = 6


def shown_keys(screen: Screen[Any]) -> tuple[tuple[object, ...], ...]:
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


def _layout(keys: tuple[tuple[object, ...], ...]) -> tuple[tuple[object, ...], ...]:
    """``shown_keys`` without the enabled flags: what decides the footer's entries and widths."""
    return tuple(key[:_ENABLED] + key[_ENABLED + 1 :] for key in keys)


class StableFooter(Footer):
    """Footer whose keys are recomposed only when what it shows changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown_keys: tuple[tuple[object, ...], ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            keys = shown_keys(screen)
            if keys == self._shown_keys and self._bindings_ready:
                return
            shown_before, self._shown_keys = self._shown_keys, keys
            if (
                self._bindings_ready
                and shown_before is not None
                and _layout(keys) == _layout(shown_before)
                and self.children
            ):
                self._show_enabled(keys)
                return
        super().bindings_changed(screen)

    def _show_enabled(self, keys: tuple[tuple[object, ...], ...]) -> None:
        """Grey out or light up the entries in place, as a recompose would draw them."""
        enabled = {(key[0], key[1]): bool(key[_ENABLED]) for key in keys}
        for entry in self.query(FooterKey):
            on = enabled.get((entry.key, entry.action))
            if on is None:
                continue
            entry.set_class(not on, "-disabled")
            entry._disabled = not on  # what a click on it does: its key, or a bell

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self.fit_keys)

    def on_resize(self, event: events.Resize) -> None:
        # Wider again: show every entry, let them be laid out, then hide what overflows.
        for child in self.children:
            child.display = True
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self) -> None:
        """Hide the entries that would run past the footer's right edge (or into the palette key)."""
        if not self.is_attached or not self.size.width:
            return
        palette = [child for child in self.children if child.has_class("-command-palette")]
        entries = [child for child in self.children if child not in palette]
        room = self.content_region.right
        if palette and palette[0].display:
            room = palette[0].region.x - palette[0].styles.margin.left
        first_hidden = next(
            (
                index
                for index, entry in enumerate(entries)
                if entry.display and entry.region.right - _trailing_blank(entry) > room
            ),
            None,
        )
        if first_hidden is not None and first_hidden > 0:
            # A group's keys and its label (the next entry) go together.
            if type(entries[first_hidden]).__name__ == "FooterLabel":
                first_hidden -= 1
        for index, entry in enumerate(entries):
            shown = first_hidden is None or index < first_hidden
            if entry.display != shown:
                entry.display = shown


def _trailing_blank(entry: object) -> int:
    """Cells at the end of a footer entry that are padding (a key's text ends " q Quit ")."""
    return 1 if type(entry).__name__ == "FooterKey" else 0
