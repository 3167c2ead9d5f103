"""The problem kinds' screenshots (app/export/screenshots.py `TAB_SHOTS`): taken from the real
window at 1280 × 800 on the tab they are about, and shown by the README and docs/lab-format.md."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage

from app.export.screenshots import TAB_SHOTS, take_tab

ROOT = Path(__file__).resolve().parents[2]


def test_the_matrix_race_shot_is_the_spectra_tab_at_1280_by_800(qapp, settings, tmp_path):
    lab, tab, run = TAB_SHOTS["matrix-spectra-race.png"]
    assert tab == "Spectra" and lab.is_file()
    path = take_tab(qapp, settings, lab, tab, run, tmp_path / "shot.png")
    image = QImage(str(path))
    assert (image.width(), image.height()) == (1280, 800)
    # Not a blank window: the plots' dark background and the curves' colours both appear.
    colours = {image.pixel(x, y) for x in range(470, 1270, 7) for y in range(160, 760, 7)}
    assert len(colours) > 20


def test_the_readme_and_the_lab_format_show_the_tab_shots():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lab_format = (ROOT / "docs" / "lab-format.md").read_text(encoding="utf-8")
    for name in TAB_SHOTS:
        image = QImage(str(ROOT / "docs" / "screenshots" / name))
        assert (image.width(), image.height()) == (1280, 800), name
        assert f"(docs/screenshots/{name})" in readme
        assert f"(screenshots/{name})" in lab_format
