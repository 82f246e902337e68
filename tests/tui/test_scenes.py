"""Snapshot tests of the main scenes, built by the same factory and seeds as `make screenshots`.

A failure means the screen changed: look at the report, and if the change is
wanted, run ``pytest tests/tui/test_scenes.py --snapshot-update`` and
``make screenshots`` so the README's pictures stay current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.tui.scenes import SCENES, Scene, main


@pytest.mark.parametrize("scene", SCENES, ids=[scene.name for scene in SCENES])
def test_scene_looks_as_approved(scene: Scene, tmp_path: Path, snap_compare: Any) -> None:
    app = scene.build(tmp_path / "home")
    try:
        assert snap_compare(
            app, press=scene.press, terminal_size=scene.size, run_before=scene.run_before
        )
    finally:
        app.builder.close()
        app.operator.close()


def test_the_screenshot_command_writes_the_named_scenes_into_a_new_folder(tmp_path: Path) -> None:
    folder = tmp_path / "not" / "yet" / "there"  # save_screenshot would not create it
    assert main([str(folder), "attached"]) == 0
    assert sorted(path.name for path in folder.iterdir()) == ["attached.svg"]
    assert "ATTACHED" in (folder / "attached.svg").read_text()
