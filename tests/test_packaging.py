"""What the wheel carries: every package of src/lossevo, and conf/ (at the repository root) as
lossevo.conf with every config group. The wheel itself is built, installed and run from another
folder by .ci/wheel_check."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10, which lossevo supports: the same parser from PyPI (a dev dependency)
    import tomli as tomllib


def test_the_package_list_names_every_package_and_config_group() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"": "src", "lossevo.conf": "conf"}
    code = sorted(
        ".".join(init.parent.relative_to(ROOT / "src").parts)
        for init in (ROOT / "src" / "lossevo").rglob("__init__.py")
    )
    groups = sorted(
        f"lossevo.conf.{d.name}" for d in (ROOT / "conf").iterdir() if d.is_dir() and any(d.glob("*.yaml"))
    )
    assert "lossevo.data" in code and "lossevo.conf.model" in groups  # found what it looks for
    assert sorted(setuptools["packages"]) == sorted([*code, "lossevo.conf", *groups])


def test_the_configs_are_found_where_the_package_is() -> None:
    from lossevo.config import CONF_DIR

    assert (CONF_DIR / "evolve.yaml").is_file()
    assert CONF_DIR.resolve() == (ROOT / "conf").resolve()  # an editable install reads the clone's conf/


def test_the_version_is_the_one_pyproject_declares() -> None:
    import lossevo

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert lossevo.__version__ == project["version"]
