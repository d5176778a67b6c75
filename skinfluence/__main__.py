"""Command line: ``python -m skinfluence demo`` and ``python -m skinfluence audit``."""

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
    audit = sub.add_parser(
        "audit", help="rank the rows of a CSV file by self-influence (suspicious rows first)"
    )
    audit.add_argument("csv", help="a CSV file with a header row")
    audit.add_argument("--target", required=True, help="the column to predict")
    audit.add_argument("--task", choices=["auto", "classification", "regression"],
                       default="auto",
                       help="auto: regression for a numeric target with > 20 values")
    audit.add_argument("--model", choices=["logistic", "svm"], default="logistic",
                       help="classifier to fit (regression always uses ridge)")
    audit.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    audit.add_argument("--output", help="write the full ranking to this CSV file")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        run(top=args.top)
        return 0
    from ._audit import main as audit_main

    return audit_main(args)


if __name__ == "__main__":
    sys.exit(main())
