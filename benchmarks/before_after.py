"""Every model of two checkouts of labserver, side by side in one run: did a change make a model slower?

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/before_after.py /tmp/before .          # small files, 64 clients, wrk
    .venv/bin/python benchmarks/before_after.py /tmp/before . --models select,threadpool --rounds 5

Each model of each checkout is started with `python -m labserver serve`, from
that checkout's own package (PYTHONPATH), in a process of its own, and loaded
with wrk (labserver's generator where wrk is missing) on the same 1 KiB file,
the two versions alternating in every round (A, B, A, B, ...) so that a drift
of the machine hits both alike. The table gives each version's median req/s
and the ratio after / before: on a shared machine, a ratio between about 0.9
and 1.1 is noise. Models only one checkout has are measured in that one alone.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labserver.children import Child  # noqa: E402
from labserver.load import run  # noqa: E402
from labserver.load.wrk import run_wrk, wrk_path  # noqa: E402

SIZE = 1024  # bytes of the file every server serves


def models_of(tree):
    done = subprocess.run([sys.executable, "-m", "labserver", "models"], capture_output=True, text=True,
                          encoding="utf-8", env=dict(os.environ, PYTHONPATH=str(tree)), cwd=str(tree), check=True)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def serve(tree, model, root):
    """A labserver model of `tree` in a process of its own; (child, port)."""
    command = [sys.executable, "-m", "labserver", "serve", "--model", model, "--port", "0", "--root", str(root),
               "--quiet"]
    child = Child(command, env=dict(os.environ, PYTHONPATH=str(tree)), cwd=str(tree)).start()  # -m: cwd comes first
    try:
        port = int(child.wait_for_output(r"http://127\.0\.0\.1:(\d+)/", timeout=30).group(1))
    except BaseException:
        child.stop()
        raise
    return child, port


def measure(port, clients, seconds):
    url = f"http://127.0.0.1:{port}/file.bin"
    if wrk_path():
        return run_wrk(url, clients=clients, duration=seconds)["rps"]
    return run(url, clients=clients, duration=seconds).rps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the checkout before the change")
    parser.add_argument("after", type=Path, help="the checkout after the change")
    parser.add_argument("--models", help="comma-separated (default: every model either checkout has)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for tree in (args.before, args.after):
        if not (tree / "labserver" / "__init__.py").exists():
            parser.error(f"{tree} is not a labserver checkout (no labserver/__init__.py)")
    if args.clients < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--clients, --seconds and --rounds must be above 0")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    available = {name: models_of(tree) for name, tree in trees.items()}
    models = args.models.split(",") if args.models else list(dict.fromkeys(available["before"] + available["after"]))
    print(f"{args.rounds} rounds of {args.seconds:g} s, {args.clients} clients, {SIZE} B, "
          f"{'wrk' if wrk_path() else 'labserver generator (no wrk)'}")
    with tempfile.TemporaryDirectory(prefix="labserver-before-after-") as root:
        Path(root, "file.bin").write_bytes(b"x" * SIZE)
        print(f"{'model':<11} {'before':>9} {'after':>9} {'after/before':>13}")
        for model in models:
            rates = {name: [] for name in trees if model in available[name]}
            for _ in range(args.rounds):
                for name in rates:
                    child, port = serve(trees[name], model, root)
                    try:
                        measure(port, args.clients, 0.5)  # warm-up
                        rates[name].append(measure(port, args.clients, args.seconds))
                    finally:
                        child.stop()
            medians = {name: statistics.median(values) for name, values in rates.items()}
            ratio = medians["after"] / medians["before"] if len(medians) == 2 and medians["before"] else None
            print(f"{model:<11} {medians.get('before', float('nan')):>9,.0f} {medians.get('after', float('nan')):>9,.0f} "
                  f"{'-' if ratio is None else f'{ratio:.2f}':>13}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
