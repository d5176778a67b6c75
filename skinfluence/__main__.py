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
        "audit", help="rank the rows of a CSV file by self-influence (suspicious rows first)",
        description=(
            "Fit a default model to a CSV file (numeric columns: median-imputed and scaled; "
            "other columns: one-hot encoded) and rank its rows by self-influence: the rows the "
            "model bends towards most, likely label errors and outliers, come first. Columns "
            "that identify rows (a saved pandas index, an id column, names or other nearly "
            "all-distinct text) are left out of the features and named in a note; --drop, "
            "--keep and --index-col override that. Problems with the input are reported in one "
            "line, with exit code 2."
        ),
        epilog="example: python -m skinfluence audit data.csv --target label "
               "--index-col name --output ranking.csv",
    )
    audit.add_argument("csv", help="a CSV file with a header row (UTF-8, cp1252 or latin-1; "
                                   ".gz, .bz2, .xz and .zip files are decompressed)")
    audit.add_argument("--target", required=True, metavar="COL", help="the column to predict")
    audit.add_argument("--task", choices=["auto", "classification", "regression"],
                       default="auto",
                       help="auto (default): regression for a numeric target with > 20 values")
    audit.add_argument("--model", choices=["logistic", "svm", "ridge", "poisson", "gamma",
                                           "tweedie"], default=None,
                       help="classification: logistic (default) or svm; regression: ridge "
                            "(default), poisson (counts), gamma (positive amounts) or tweedie "
                            "(amounts with zeros); a regression model implies --task regression")
    audit.add_argument("--rank", choices=["self-influence", "cooks"], default=None,
                       help="order of the ranking: self-influence (default for classification) "
                            "or Cook's distance (default for regression)")
    audit.add_argument("--weight", metavar="COL",
                       help="a column of sample weights (e.g. exposure for a claim frequency): "
                            "used by the fit, not as a feature")
    audit.add_argument("--top", type=int, default=10, metavar="N",
                       help="rows to print (default 10)")
    audit.add_argument("--output", metavar="FILE",
                       help="also write the full ranking (every row) to this CSV file")
    audit.add_argument("--index-col", metavar="COL",
                       help="a column of row labels (e.g. names or ids) that identifies the rows "
                            "in the ranking; it is not used as a feature")
    audit.add_argument("--drop", nargs="+", action="extend", default=[], metavar="COL",
                       help="columns to leave out of the features")
    audit.add_argument("--keep", nargs="+", action="extend", default=[], metavar="COL",
                       help="columns to use as features although they look like row identifiers")
    audit.add_argument("--dropna", action="store_true",
                       help="leave out the rows whose target is missing (default: refuse them)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        run(top=args.top)
        return 0
    from ._audit import main as audit_main

    try:
        return audit_main(args)
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
