"""Settings for every pytest run from this folder, tests and notebooks alike.

The notebooks read LABSERVER_PROFILE to size their experiments: "ci" keeps each
one to a few seconds. nbval's kernels inherit this process's environment, so
setting it here reaches them on every OS, with no shell syntax (`make test`,
`python -m pytest`, PowerShell, cmd and GitHub Classroom all run the same).
An explicit LABSERVER_PROFILE=lecture still wins.
"""

import os

os.environ.setdefault("LABSERVER_PROFILE", "ci")
