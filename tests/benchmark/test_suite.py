"""Reading and checking suite files."""

from pathlib import Path

import pytest

from optuna_nachos.benchmark import EXPERIMENT_KINDS, SuiteError, load_suite

SUITES = Path(__file__).resolve().parents[2] / "optuna_nachos" / "benchmark" / "suites"

MINIMAL = """
description = "tiny"
dataset = "digits"
resolution = 16
seeds = [0, 1]
max_avg_macs = 2_000_000
min_accuracy = 0.3

[[experiment]]
name = "search"
kind = "search"
part = "one"
sampler = "random"
n_trials = 3
"""


def _write(tmp_path: Path, text: str, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_shipped_suites_load(name: str) -> None:
    suite = load_suite(name, suites_dir=SUITES)
    assert suite.name == name
    assert suite.experiments and suite.seeds
    assert {e.kind for e in suite.experiments} <= set(EXPERIMENT_KINDS)
    for experiment in suite.experiments:
        if experiment.reference is not None:
            assert experiment.reference in suite.reference["rows"]


def test_cpu_suite_covers_the_issue() -> None:
    suite = load_suite("cpu", suites_dir=SUITES)
    assert suite.dataset == "fashion-mnist" and len(suite.seeds) >= 2
    samplers = {e.sampler for e in suite.experiments if e.kind == "search"}
    assert {"nachos", "motpe", "nsga2", "random"} <= samplers
    trials = {e.n_trials for e in suite.experiments if e.kind == "search" and e.name != "edanas"}
    assert len(trials) == 1, "the samplers run at equal budgets"
    kinds = {e.name: e.kind for e in suite.experiments}
    assert kinds["single_exit"] == "single_exit" and kinds["sdn"] == "fixed"
    assert {"no_mac", "no_support", "no_constraints", "edanas"} <= set(kinds)


def test_paper_variants_set_the_reference_budgets() -> None:
    cifar100 = load_suite("paper", suites_dir=SUITES, variants=["cifar100"])
    assert (cifar100.max_avg_macs, cifar100.min_accuracy) == (3.7e6, 0.35)
    jpeg = load_suite("paper", suites_dir=SUITES, variants=["cifar10-jpeg", "reduced"])
    assert jpeg.dataset == "cifar10-jpeg" and jpeg.seeds == (0,)
    assert jpeg.experiment("nachos").n_trials == 4
    assert any("cifar10-jpeg" in d for d in jpeg.differences)
    full = load_suite("paper", suites_dir=SUITES)
    assert full.experiment("nachos").n_trials == 180
    assert full.experiment("nachos").sampler_options["n_startup_trials"] == 100
    assert len(full.seeds) == 4


def test_minimal_suite_by_path(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, MINIMAL))
    assert suite.parts == ("one",)
    assert suite.experiment("search").label == "search"
    assert suite.max_avg_macs == 2e6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("n_trials = 3", "n_trials = 0"), "n_trials >= 1"),
        (('sampler = "random"', 'sampler = "annealing"'), "unknown sampler"),
        (('kind = "search"', 'kind = "grid"'), "kind must be one of"),
        (('part = "one"', 'part = "one"\nwidth = 3'), "unknown key"),
        (("min_accuracy = 0.3\n", ""), "min_accuracy"),
    ],
)
def test_malformed_suites_are_explained(tmp_path: Path, change, message) -> None:
    with pytest.raises(SuiteError, match=message):
        load_suite(_write(tmp_path, MINIMAL.replace(*change)))


def test_retrain_needs_an_earlier_search(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[experiment]]\nname = "again"\nkind = "retrain"\npart = "two"\n'
    with pytest.raises(SuiteError, match="needs the 'source'"):
        load_suite(_write(tmp_path, text))
    with pytest.raises(SuiteError, match="not a search experiment"):
        load_suite(_write(tmp_path, text + 'source = "missing"\n'))


def test_unknown_suite_and_variant(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL)
    with pytest.raises(SuiteError, match="suites there: tiny"):
        load_suite("nothing", suites_dir=tmp_path)
    with pytest.raises(SuiteError, match="no variant 'gpu'"):
        load_suite("tiny", suites_dir=tmp_path, variants=["gpu"])
    with pytest.raises(SuiteError, match="not valid TOML"):
        load_suite(_write(tmp_path, "dataset = [", name="broken"))


def test_shipped_suites_load_by_name_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no benchmarks/ folder here
    suite = load_suite("smoke")
    assert suite.path == SUITES / "smoke.toml"
    assert suite.keep_networks == "timed"


def test_suites_are_package_data() -> None:
    from optuna_nachos.benchmark._suite import tomllib  # tomli before Python 3.11

    pyproject = tomllib.loads((SUITES.parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["optuna_nachos.benchmark"]
    shipped = {p.name for pattern in patterns for p in SUITES.parent.glob(pattern)}
    assert {"smoke.toml", "cpu.toml", "paper.toml"} <= shipped


def test_keep_networks(tmp_path: Path) -> None:
    assert load_suite(_write(tmp_path, MINIMAL)).keep_networks == "all"
    best = load_suite(_write(tmp_path, 'keep_networks = "best"\n' + MINIMAL))
    assert best.keep_networks == "best"
    with pytest.raises(SuiteError, match="keep_networks must be one of all, best, timed"):
        load_suite(_write(tmp_path, 'keep_networks = "some"\n' + MINIMAL))


def test_default_checkpoints_are_the_search_budgets(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[[experiment]]\nname = "short"\nkind = "search"\npart = "one"\nn_trials = 2\n'
        '\n[[experiment]]\nname = "again"\nkind = "retrain"\npart = "two"\nsource = "search"\n'
    )
    suite = load_suite(_write(tmp_path, text))
    assert suite.hypervolume_checkpoints == () and suite.checkpoints == (2, 3)
    assert suite.compare_against is None


def test_checkpoints_and_baseline_from_the_file(tmp_path: Path) -> None:
    text = 'hypervolume_checkpoints = [3, 1]\ncompare_against = "search"\n' + MINIMAL
    suite = load_suite(_write(tmp_path, text))
    assert suite.checkpoints == (1, 3) and suite.compare_against == "search"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("hypervolume_checkpoints = []", "non-empty list"),
        ("hypervolume_checkpoints = 20", "non-empty list"),
        ("hypervolume_checkpoints = [0, 3]", "at least 1"),
        ("hypervolume_checkpoints = [2.5]", "whole numbers"),
        ("hypervolume_checkpoints = [true]", "whole numbers"),
        ("hypervolume_checkpoints = [3, 3]", "twice"),
        ('compare_against = "nachos"', "compare_against names 'nachos'.*give one of search"),
    ],
)
def test_bad_statistics_keys_are_explained(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        load_suite(_write(tmp_path, line + "\n" + MINIMAL))


def test_shipped_suites_compare_with_nachos() -> None:
    cpu = load_suite("cpu", suites_dir=SUITES)
    assert cpu.compare_against == "nachos" and cpu.checkpoints == (16, 20)
    paper = load_suite("paper", suites_dir=SUITES)
    assert paper.compare_against == "nachos" and paper.checkpoints == (20, 60, 100, 180)
    reduced = load_suite("paper", suites_dir=SUITES, variants=["reduced"])
    assert reduced.checkpoints == (2, 4)


SUPERNET = MINIMAL.replace(
    "[[experiment]]", "[supernet]\nepochs = 3\nbatch_size = 32\n\n[[experiment]]", 1
)


def test_supernet_table(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, SUPERNET))
    assert suite.supernet == {"epochs": 3, "batch_size": 32}
    assert suite.parts == ("supernet", "one")
    settings = suite.supernet_settings()
    assert (settings.epochs, settings.batch_size) == (3, 32)
    assert (settings.device, settings.progress) == ("cpu", False)
    plain = load_suite(_write(tmp_path, MINIMAL, "plain"))
    assert plain.supernet == {} and plain.supernet_settings() is None
    assert "supernet" not in plain.parts


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("epochs = 3", "epochs = 3\nwidth = 2"), r"\[supernet\]: unknown key\(s\) width; allowed"),
        (("epochs = 3", "epochs = 3\ndevice = 'cuda'"), "sets device, which the suite sets"),
        (("epochs = 3", "epochs = 0"), r"invalid \[supernet\] settings: epochs"),
        (('part = "one"', 'part = "supernet"'), "part name 'supernet'.*reserved"),
        (
            ('sampler = "random"', 'sampler = "random"\nspace = { resolutions = [32] }'),
            "supernet serves only 16",
        ),
    ],
)
def test_malformed_supernet_tables_are_explained(tmp_path: Path, change, message) -> None:
    with pytest.raises(SuiteError, match=message):
        load_suite(_write(tmp_path, SUPERNET.replace(*change)))


def test_supernet_part_name_is_reserved_without_a_supernet(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="reserved"):
        load_suite(_write(tmp_path, MINIMAL.replace('part = "one"', 'part = "supernet"')))


def test_variant_overrides_the_supernet(tmp_path: Path) -> None:
    text = SUPERNET + "\n[variants.longer.supernet]\nepochs = 5\n"
    suite = load_suite(_write(tmp_path, text), variants=["longer"])
    assert suite.supernet == {"epochs": 5}
    assert suite.supernet_settings().epochs == 5
    text = MINIMAL + "\n[variants.shared.supernet]\nepochs = 2\n"
    assert load_suite(_write(tmp_path, text, "other"), variants=["shared"]).parts[0] == "supernet"
    bad = SUPERNET + "\n[variants.bad.supernet]\nepoch = 5\n"
    with pytest.raises(SuiteError, match="unknown key"):
        load_suite(_write(tmp_path, bad, "bad"), variants=["bad"])
