"""The results page: every cell holds a figure, "none admissible" or "-", never "n/a"."""

from optuna_nachos.benchmark._markdown import _reference_macs


def test_reference_convention_cell_says_why_it_is_empty() -> None:
    key = "test_avg_macs_reference_convention"
    assert _reference_macs({f"{key}_mean": 2.001e6, f"{key}_sd": 0.0}) == "2.001"
    assert _reference_macs({f"{key}_mean": 2.0e6, f"{key}_sd": 0.1e6}) == "2.000 ± 0.100"
    assert _reference_macs({f"{key}_mean": None, f"{key}_sd": None}) == "none admissible"
    assert _reference_macs({}) == "-"  # a record written before the column existed
