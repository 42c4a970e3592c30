"""The kit installs the same way everywhere: pip (pyproject.toml) and conda/Binder
(environment.yml) must ask for the same packages with the same version ranges."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pyproject_dependencies():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    return {normalize(d) for d in re.findall(r'"([^"]+)"', block)}


def conda_dependencies():
    deps = set()
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
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
    conda_python = re.search(r"- python=(\d+)\.(\d+)", (ROOT / "environment.yml").read_text(encoding="utf-8"))
    required = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert conda_python and required
    assert tuple(map(int, conda_python.groups())) >= tuple(map(int, required.groups()))


def test_binder_postbuild_installs_the_package():
    assert "pip install" in (ROOT / "postBuild").read_text(encoding="utf-8")


def test_plain_pytest_runs_what_make_test_runs():
    """`python -m pytest` (the README's command without make) collects the notebooks with
    nbval and gives the run (and so nbval's kernels) the CI profile, with no shell setting it."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LABSERVER_PROFILE"}
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "notebooks/00-welcome.ipynb"],
                          cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert "00-welcome.ipynb::Cell 0" in done.stdout, done.stdout + done.stderr
    env["LABSERVER_PROBE_PROFILE"] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", f"{__file__}::test_profile_seen_by_the_run"],
                          cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr


def test_profile_seen_by_the_run():
    """Run by the test above, in a pytest started without LABSERVER_PROFILE."""
    import os

    if os.environ.get("LABSERVER_PROBE_PROFILE"):
        assert os.environ.get("LABSERVER_PROFILE") == "ci"


def test_github_workflow_runs_the_readme_command_on_every_system():
    text = (ROOT / ".github" / "workflows" / "tests.yml").read_text(encoding="utf-8")
    for system in ("ubuntu-latest", "macos-latest", "windows-latest"):
        assert system in text
    assert '"3.10"' in text and '"3.13"' in text
    assert "-m pip install -e ." in text and "-m pytest" in text


def test_a_scratch_notebook_is_not_a_lesson():
    """A student's Untitled.ipynb in notebooks/ must not become part of `make test`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    ignore = root_conftest.pytest_ignore_collect
    assert ignore(ROOT / "notebooks" / "Untitled.ipynb", None) is True
    assert ignore(ROOT / "notebooks" / "03-select-Copy1.ipynb", None) is True
    assert ignore(ROOT / "notebooks" / "03-select.ipynb", None) is None
    assert ignore(ROOT / "tests" / "test_cli.py", None) is None
