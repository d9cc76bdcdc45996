"""The results page: every cell holds a figure, "none admissible" or "-", never "n/a"."""

from optuna_nachos.benchmark import results_markdown
from optuna_nachos.benchmark._markdown import _across_seeds, _reference_macs


def test_reference_convention_cell_says_why_it_is_empty() -> None:
    key = "test_avg_macs_reference_convention"
    assert _reference_macs({f"{key}_mean": 2.001e6, f"{key}_sd": 0.0}) == "2.001"
    assert _reference_macs({f"{key}_mean": 2.0e6, f"{key}_sd": 0.1e6}) == "2.000 ± 0.100"
    assert _reference_macs({f"{key}_mean": None, f"{key}_sd": None}) == "none admissible"
    assert _reference_macs({}) == "-"  # a record written before the column existed


def _record(comparisons: list[dict]) -> dict:
    interval = {"n": 3, "mean": 0.41234, "low": 0.3, "high": 0.52468, "sd": 0.045}
    return {
        "experiments": [
            {
                "name": "nachos",
                "label": "NACHOS",
                "summary": {"hypervolume_at": {"20": interval, "60": None}},
            },
            {"name": "sdn", "label": "SDN", "summary": {"hypervolume_at": {"20": None}}},
        ],
        "statistics": {
            "confidence": 0.95,
            "checkpoints": [20, 60],
            "baseline": "nachos",
            "comparisons": comparisons,
        },
    }


def test_hypervolume_table_per_checkpoint() -> None:
    text = "\n".join(_across_seeds(_record([])))
    assert "## Hypervolume across seeds" in text
    assert "| variant | k = 20 | k = 60 |" in text
    assert "| NACHOS | 0.4123 [0.3000, 0.5247] (n=3) | - |" in text
    assert "SDN" not in text  # no run of it reached a checkpoint
    assert "Paired by seed" not in text  # no comparison rows


def test_paired_comparison_table() -> None:
    row = {
        "experiment": "random",
        "label": "random search",
        "checkpoint": 20,
        "seeds": [0, 1],
        "n": 2,
        "mean_difference": 0.05,
        "low": -0.2,
        "high": 0.3,
        "t_test_p": 0.1234,
        "wilcoxon_p": None,
    }
    text = "\n".join(_across_seeds(_record([row])))
    assert "Paired by seed: NACHOS minus each variant" in text
    assert "| variant | k | mean difference [95% CI] | t-test p | Wilcoxon p | n |" in text
    assert "| random search | 20 | +0.0500 [-0.2000, +0.3000] | 0.123 | - | 2 |" in text


def test_records_without_the_statistics_render_no_section() -> None:
    record = _record([])
    del record["statistics"]
    assert _across_seeds(record) == []


def test_results_page_places_the_section_before_every_run() -> None:
    record = _record([])
    for experiment in record["experiments"]:
        experiment["summary"]["runs"] = 0  # no headline row needed
        experiment["runs"] = []
    record["suite"] = {
        "name": "tiny",
        "description": "tiny",
        "dataset": "digits",
        "resolution": 16,
        "train_subset": None,
        "max_avg_macs": 2e6,
        "min_accuracy": 0.3,
        "seeds": [0, 1, 2],
        "differences": [],
        "reference": {},
        "threads": 1,
    }
    record["efficiency"] = {
        "overhead_median": None,
        "overhead_max": None,
        "train_images_per_second_median": None,
    }
    record["environment"] = {
        "packages": {},
        "cpu": "cpu",
        "cpu_count": 2,
        "device": "cpu",
        "python": "3",
        "seeds": [0, 1, 2],
        "timestamp": "now",
    }
    text = results_markdown(record)
    assert text.index("## Hypervolume across seeds") < text.index("## Every run")
