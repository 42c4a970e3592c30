"""The command line: `python -m labserver serve` (or `labserver serve`).

    labserver serve [--root DIR] [--host H] [--port N] [--model NAME] [--workers N]
    labserver models                          the concurrency models, in lesson order
    labserver bench [--models a,b|all] [--clients 1,8,64] [--url URL] [--out DIR]
    labserver calibrate [--url URL]           our load generator next to wrk
    labserver grade --url URL | --cmd "python server.py --port {port} --root {root}" [--json FILE]
    labserver assignments build|hidden|grade|score ...   instructors: release and grading (see assignments/)

Mistakes get one line on stderr and exit status 2, as Unix tools do.
"""

import argparse
import logging
import signal
import sys

from . import DEMO_SITE
from .limits import raise_open_files_limit
from .servers import DEFAULT_MODEL, MODELS, ServerError, get_model


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the whole usage first; one line is easier to read.
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = ArgumentParser(prog="labserver", description="The labserver course kit's servers and tools.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    serve = commands.add_parser("serve", help="serve a folder over HTTP until Ctrl-C")
    serve.add_argument("--root", help="folder to serve (default: the bundled demo site)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    serve.add_argument("--port", type=port_number, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    serve.add_argument("--model", default=DEFAULT_MODEL, choices=list(MODELS), metavar="NAME",
                       help=f"concurrency model (default {DEFAULT_MODEL}; see `labserver models`)")
    serve.add_argument("--workers", type=positive_int, help="worker threads or processes, for models that have them")
    serve.add_argument("--quiet", action="store_true", help="do not print the access log")

    commands.add_parser("models", help="list the concurrency models, in lesson order")
    add_load_commands(commands)
    add_grade_command(commands)
    return parser


def add_load_commands(commands):
    """`bench` and `calibrate` (the work is done in labserver.load.commands)."""
    bench = commands.add_parser("bench", help="measure models (or any URL) under load; print a table, write CSV/JSON")
    bench.add_argument("--models", metavar="A,B|all",
                       help=f"models to launch and measure, each in its own process (default {DEFAULT_MODEL})")
    bench.add_argument("--clients", type=count_list, metavar="1,8,64",
                       help="concurrent clients per point (default: LABSERVER_PROFILE's)")
    bench.add_argument("--duration", type=positive_float, metavar="S", help="seconds measured per point")
    bench.add_argument("--warmup", type=non_negative_float, metavar="S", help="seconds of unmeasured load before each point")
    bench.add_argument("--workload", action="append", metavar="PATH_OR_NAME",
                       help="a path, small/large/bytes/cpu/sleep/mix, or a weighted mix like small:8,large:1 "
                            "(repeat for several; default small)")
    bench.add_argument("--keep-alive", action=argparse.BooleanOptionalAction, default=True,
                       help="reuse each connection (default), or open a new one per request")
    bench.add_argument("--url", help="measure a server that is already running (yours, nginx...) instead")
    bench.add_argument("--pid", type=positive_int, help="with --url: the server's process id, for its CPU and memory")
    bench.add_argument("--root", help="folder the launched models serve (default: the demo site)")
    bench.add_argument("--workers", type=positive_int, help="worker threads or processes of the launched models")
    bench.add_argument("--pin", action="store_true", help="server on CPU 0, clients on the other cores (Linux)")
    bench.add_argument("--timeout", type=positive_float, metavar="S", help="seconds without a byte before a request times out")
    bench.add_argument("--out", default="bench-results", metavar="DIR", help="where to write CSV/JSON (default bench-results)")

    calibrate = commands.add_parser("calibrate", help="measure one server with wrk and with our generator, side by side")
    calibrate.add_argument("--url", help="the server to measure (default: launch --model and fetch --workload)")
    calibrate.add_argument("--pid", type=positive_int, help="with --url: the server's process id")
    calibrate.add_argument("--model", help=f"model to launch when there is no --url (default {DEFAULT_MODEL})")
    calibrate.add_argument("--workload", default="small", metavar="PATH_OR_NAME", help="one path or name (default small)")
    calibrate.add_argument("--clients", type=positive_int, default=64, help="concurrent connections (default 64)")
    calibrate.add_argument("--duration", type=positive_float, default=3.0, metavar="S", help="seconds per run (default 3)")
    calibrate.add_argument("--rounds", type=positive_int, default=5, help="wrk/labserver pairs, interleaved (default 5)")
    calibrate.add_argument("--pin", action="store_true",
                           help="the launched server on core 0, wrk and our clients on the others (Linux)")

    assignments = commands.add_parser("assignments", help="instructors: build the student release, grade submissions")
    from .assignments import add_arguments

    add_arguments(assignments)


def add_grade_command(commands):
    """`grade` (the work is done in labserver.grade)."""
    grade = commands.add_parser("grade", help="check any HTTP server against the project's checklist; print a score")
    target = grade.add_mutually_exclusive_group(required=True)
    target.add_argument("--url",
                        help="a running server that serves the demo site at its root, e.g. http://127.0.0.1:8000/")
    target.add_argument("--cmd", metavar="COMMAND",
                        help='start this server, then grade it: "python myserver.py --port {port} --root {root}" '
                             "({port}: a free port, {root}: the demo site; python: this Python)")
    grade.add_argument("--source", metavar="FILE",
                       help="grade FILE as the project: its own code, standard library only (zero points if not)")
    grade.add_argument("--json", metavar="FILE",
                       help="also write the grade as JSON to FILE (- for stdout; the table then goes to stderr)")
    grade.add_argument("--clients", type=positive_int, default=50, help="concurrent downloaders (default 50)")
    grade.add_argument("--duration", type=positive_float, default=2.0, metavar="S",
                       help="seconds they download for (default 2)")
    grade.add_argument("--timeout", type=positive_float, default=3.0, metavar="S",
                       help="seconds to wait for each answer (default 3)")
    grade.add_argument("--start-timeout", type=positive_float, default=10.0, metavar="S",
                       help="with --cmd: seconds the server has to accept connections (default 10)")
    grade.add_argument("--deadline", type=positive_float, default=240.0, metavar="S",
                       help="seconds the whole grade may take; rows after that are not run (default 240)")


def port_number(text):
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (use 0-65535)")
    return int(text)


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def positive_float(text):
    value = finite_float(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def non_negative_float(text):
    value = finite_float(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def finite_float(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # not nan, not inf


def count_list(text):
    """'1,8,64' -> [1, 8, 64]"""
    try:
        return [positive_int(item.strip()) for item in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1 separated by commas, got {text!r}") from None


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command in ("bench", "calibrate"):
        from .load import commands  # imported only here: `serve` starts without it

        return commands.bench(args) if args.command == "bench" else commands.calibrate(args)
    if args.command == "grade":
        from .grade.cli import command  # imported only here, like the load commands

        return command(args)
    if args.command == "assignments":
        from . import assignments

        return assignments.command(args)
    if args.command == "models":
        for name, cls in MODELS.items():
            print(f"{name:12} {cls.description}")
        return 0
    return serve(args)


def serve(args):
    root = args.root if args.root is not None else DEMO_SITE
    raise_open_files_limit()  # a socket per client: macOS starts a process at 256 files
    options = {"root": root, "host": args.host, "port": args.port, "workers": args.workers}
    try:
        server = get_model(args.model)(**options)
    except (OSError, ServerError) as error:
        return fail(str(error))
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # Ctrl-C, and SIGTERM from kill or a test harness, stop cleanly. SIGINT is
    # set explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl-Break, and how another program interrupts us
        signal.signal(signal.SIGBREAK, signal.default_int_handler)
    try:  # a signal may arrive at any moment from here on, even during a print
        try:
            server.start()
        except (OSError, ServerError) as error:
            return fail(str(error))
        print(f"Serving {root} at {server.url} with the {args.model} model (Ctrl-C to stop)", flush=True)
        while server.running:
            server.stopping.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print("Stopped.", flush=True)
    return 0


def fail(message):
    print(f"labserver: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
