"""Shared arguments and helpers of the command-line tests."""

RANDOM_SEARCH = [
    "search",
    "--dataset",
    "digits",
    "--sampler",
    "random",
    "--min-accuracy",
    "0.0",
    "--no-progress",
]
"""A quiet random search on digits that accepts any accuracy (callers add the budgets)."""


def error_line(capsys) -> str:
    """The last line the command wrote to stderr, checking it wrote no traceback."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]
