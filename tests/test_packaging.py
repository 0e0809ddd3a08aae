"""The installed import names: everything under `edge_compress`, nothing generic (`export`, `compress`) at the top.

pyproject.toml lists the packages explicitly (setuptools cannot discover them through a `package-dir` that maps
`edge_compress.compress` onto the repository's top-level `compress/` folder), so a new package folder must be listed;
this test names the one that is not.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package itself runs on 3.10


ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package_folder_under_edge_compress():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {name: ROOT / folder for name, folder in setuptools["package-dir"].items()}
    on_disk = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder).parts
            on_disk.add(".".join((name, *relative)))
    assert on_disk == set(setuptools["packages"]), "add the new package folder to pyproject.toml's packages"
    assert all(name == "edge_compress" or name.startswith("edge_compress.") for name in setuptools["packages"])


def test_only_edge_compress_is_importable_outside_the_repository(tmp_path):
    probe = ("import importlib.util as u; print([n for n in ('compress', 'export', 'calib_data') if u.find_spec(n)]);"
             "import edge_compress.export.timing, edge_compress.compress.cli, edge_compress.calib_data; print('ok')")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "ok"]


def test_python_dash_m_edge_compress_is_the_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "edge_compress", "--version"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("edge-compress ")
