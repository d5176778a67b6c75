"""Command line: ``python -m skinfluence demo``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="skinfluence", description="Influence functions for scikit-learn."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="explain a misclassified breast-cancer test point through its training rows"
    )
    demo.add_argument("--top", type=int, default=5, help="rows to show per table (default 5)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        run(top=args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
