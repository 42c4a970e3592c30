"""The kit installs the same way everywhere: pip (pyproject.toml) and conda/Binder
(environment.yml) must ask for the same packages with the same version ranges."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pyproject_dependencies():
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    return {normalize(d) for d in re.findall(r'"([^"]+)"', block)}


def conda_dependencies():
    deps = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:", 1)[1].splitlines():
        match = re.fullmatch(r"\s+- ([A-Za-z0-9_.\-]+)(.*)", line)
        if match and match.group(1) not in ("python", "pip"):
            deps.add(normalize(match.group(1) + match.group(2)))
    return deps


def normalize(requirement):
    name, spec = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", requirement.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    pip, conda = pyproject_dependencies(), conda_dependencies()
    assert pip, "no dependencies found in pyproject.toml"
    assert pip == conda, f"only in pyproject.toml: {pip - conda}; only in environment.yml: {conda - pip}"


def test_every_dependency_is_pinned_to_a_range():
    for name, spec in pyproject_dependencies():
        assert ">=" in spec and "<" in spec, f"{name} needs a lower and an upper bound, has {spec!r}"


def test_conda_python_satisfies_requires_python():
    conda_python = re.search(r"- python=(\d+)\.(\d+)", (ROOT / "environment.yml").read_text())
    required = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert conda_python and required
    assert tuple(map(int, conda_python.groups())) >= tuple(map(int, required.groups()))


def test_binder_postbuild_installs_the_package():
    assert "pip install" in (ROOT / "postBuild").read_text()
