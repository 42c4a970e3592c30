"""The command line: `python -m labserver serve` (or `labserver serve`).

    labserver serve [--root DIR] [--host H] [--port N] [--model NAME] [--workers N]
    labserver models

Mistakes get one line on stderr and exit status 2, as Unix tools do.
"""

import argparse
import logging
import signal
import sys

from . import DEMO_SITE
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
    return parser


def port_number(text):
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (use 0-65535)")
    return int(text)


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "models":
        for name, cls in MODELS.items():
            print(f"{name:12} {cls.description}")
        return 0
    return serve(args)


def serve(args):
    root = args.root if args.root is not None else DEMO_SITE
    options = {"root": root, "host": args.host, "port": args.port}
    if args.workers is not None:
        options["workers"] = args.workers
    try:
        server = get_model(args.model)(**options)
    except TypeError:
        return fail(f"model {args.model!r} does not take --workers")
    except (OSError, ServerError) as error:
        return fail(str(error))
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # Ctrl-C, and SIGTERM from kill or a test harness, stop cleanly. SIGINT is
    # set explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.start()
    except (OSError, ServerError) as error:
        return fail(str(error))
    print(f"Serving {root} at {server.url} with the {args.model} model (Ctrl-C to stop)", flush=True)
    try:
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
