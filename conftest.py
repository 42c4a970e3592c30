"""Settings for every pytest run from this folder, tests and notebooks alike.

The notebooks read LABSERVER_PROFILE to size their experiments: "ci" keeps each
one to a few seconds. nbval's kernels inherit this process's environment, so
setting it here reaches them on every OS, with no shell syntax (`make test`,
`python -m pytest`, PowerShell, cmd and GitHub Classroom all run the same).
An explicit LABSERVER_PROFILE=lecture still wins.

The lessons are the notebooks named NN-title.ipynb: a scratch notebook that a
student saves in notebooks/ (Untitled.ipynb) is not run as a test.
"""

import os
import re

os.environ.setdefault("LABSERVER_PROFILE", "ci")

LESSON_NAME = re.compile(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*\.ipynb")


def pytest_ignore_collect(collection_path, config):
    if collection_path.suffix == ".ipynb" and not LESSON_NAME.fullmatch(collection_path.name):
        return True
    return None
