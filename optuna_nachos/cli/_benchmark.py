"""The ``benchmark`` command: run, resume, summarize and check a benchmark suite."""

from __future__ import annotations

import argparse
import json

from optuna_nachos.cli._format import (
    CommandError,
    HelpFormatter,
    positive_int,
    print_trial_summary,
    search_output,
)


def add_benchmark_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="run a benchmark suite (smoke, cpu, paper)",
        description="Run or resume the parts of a benchmark suite, then write results.json, "
        "results.md and the figures into --out.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--suite",
        required=True,
        help="suite name (smoke, cpu, paper: shipped with the package) or a .toml path",
    )
    parser.add_argument("--out", required=True, help="folder of the studies and results")
    parser.add_argument(
        "--suites-dir",
        default=None,
        help="folder of your own suite files (default: the suites shipped with the package)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="apply a variant of the suite (repeatable, in order), e.g. --variant cifar10-jpeg "
        "(default: none)",
    )
    parser.add_argument(
        "--part",
        action="append",
        default=None,
        help="run only this part (repeatable; default: every part); 'supernet' trains the "
        "suite's supernet (suites with a [supernet] table)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_int,
        default=None,
        help="seconds after which each part stops starting trials (the supernet part: after "
        "its running epoch); run again to resume (default: no limit)",
    )
    parser.add_argument(
        "--summarize-only", action="store_true", help="only summarize what the studies hold"
    )
    parser.add_argument(
        "--no-summary", action="store_true", help="run the parts without summarizing"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the results (schema, admissible front, figures); exit status 1 if not",
    )
    parser.set_defaults(handler=run_benchmark_command)


def run_benchmark_command(args: argparse.Namespace) -> int:
    from optuna_nachos.benchmark import (
        SuiteError,
        check_results,
        load_suite,
        run_parts,
        summarize_suite,
    )

    if args.summarize_only and args.no_summary:
        raise CommandError("--summarize-only and --no-summary exclude each other")
    try:
        suite = load_suite(args.suite, suites_dir=args.suites_dir, variants=args.variant)
        if not args.summarize_only:
            with search_output():  # each part, trial and epoch as it runs
                status = run_parts(
                    suite,
                    args.out,
                    parts=args.part,
                    timeout=args.timeout,
                    callbacks=[print_trial_summary],
                )
            for part, complete in status.items():
                print(f"part {part}: {'complete' if complete else 'stopped early (run again)'}")
    except SuiteError as error:
        raise CommandError(str(error).rstrip(".")) from None
    if not args.no_summary:
        record = summarize_suite(suite, args.out)
        print(json.dumps({"results": f"{args.out}/results.json", "figures": record["figures"]}))
    if args.check:
        problems = check_results(args.out)
        for problem in problems:
            print(f"check failed: {problem}")
        if problems:
            return 1
        print("check passed")
    return 0
