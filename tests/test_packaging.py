"""A non-editable install (``pip install .`` / ``pipx install .``) is a whole app: the wheel holds
the ``descent-lab`` command and every file of resources/ (example labs, lessons, the icon) at the
place the code looks for them (beside the packages, as in the checkout)."""

from __future__ import annotations

import configparser
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed here (the wheel is built without network)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", str(ROOT), "-w", str(out)], check=True, cwd=out)
    (path,) = out.glob("descent_lab-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_wheel_holds_every_resource_file(wheel):
    names = set(wheel.namelist())
    # Every file of resources/ the repository holds, whatever its kind: a lesson that adds a new
    # kind of file must add its pattern to package-data in pyproject.toml too.
    tracked = subprocess.run(["git", "ls-files", "resources"], cwd=ROOT, capture_output=True,
                             text=True)
    shipped = tracked.stdout.split() if tracked.returncode == 0 else [
        p.relative_to(ROOT).as_posix() for p in (ROOT / "resources").rglob("*") if p.is_file()]
    assert any(s.startswith("resources/labs/") for s in shipped)
    assert "resources/icons/descent-lab.svg" in shipped
    missing = [s for s in shipped if s not in names]
    assert not missing, f"a non-editable install would lack {missing[:5]}"
    # The paths the code computes from its own files land on those resources once installed.
    assert "app/shell/menus.py" in names and "core/teaching/lessons/loader.py" in names
    # Never a sweep database or anything else the app may have written beside an example.
    assert not [n for n in names if n.startswith("resources/") and n.endswith((".db", "-wal"))]


def test_wheel_gives_the_descent_lab_command(wheel):
    entry = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    points = configparser.ConfigParser()
    points.read_string(wheel.read(entry).decode())
    assert points["console_scripts"]["descent-lab"] == "main:main"
    assert "main.py" in wheel.namelist()


def test_resources_sit_where_the_code_looks():
    from app.shell.desktop_entry import ICONS_DIR
    from app.shell.menus import EXAMPLES_DIR
    from core.teaching.lessons.loader import LESSONS_DIR

    for folder in (EXAMPLES_DIR, LESSONS_DIR, ICONS_DIR):
        assert folder.parent == Path(ROOT / "resources"), folder
