"""The dashboard and report commands, and search --dashboard."""

import sys

import optuna
import pytest

from optuna_nachos.cli import main

REPORT = ["report", "--study-name", "digits"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _copy(digits_study, tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    optuna.copy_study(
        from_study_name=digits_study.study.study_name,
        from_storage=digits_study.storage,
        to_storage=url,
    )
    return url


# --- report ----------------------------------------------------------------------------------


def test_report_writes_html(digits_study, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main([*REPORT, "--storage", digits_study.storage, "--out", str(out)]) == 0
    assert f"Wrote the html report of study 'digits' to {out}" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_format_follows_the_file_suffix(digits_study, tmp_path, capsys, monkeypatch):
    written = {}

    def fake_write_report(study, path, *, format):
        written[format] = path
        return path

    monkeypatch.setattr("optuna_nachos.report.write_report", fake_write_report)
    report = [*REPORT, "--storage", digits_study.storage, "--out"]
    assert main([*report, str(tmp_path / "r.md")]) == 0
    out = tmp_path / "r.txt"
    assert main([*report, str(out), "--format", "md"]) == 0
    assert main([*report, str(tmp_path / "r")]) == 0
    assert written == {"md": out, "html": tmp_path / "r"}


def test_report_on_an_unknown_study(digits_study, tmp_path, capsys):
    code = main(
        ["report", "--storage", digits_study.storage, "--study-name", "nope", "--out", "x.html"]
    )
    assert code == 2
    line = _error_line(capsys)
    assert "no study 'nope'" in line and "digits" in line


def test_report_on_a_missing_storage_file(tmp_path, capsys):
    missing = tmp_path / "missing.db"
    code = main([*REPORT, "--storage", f"sqlite:///{missing}", "--out", str(tmp_path / "r.html")])
    assert code == 2
    assert f"no storage file {missing}" in _error_line(capsys)
    assert not missing.exists(), "a typo in --storage must not create an empty database"


def test_report_without_a_study_name_opens_the_only_study(digits_study, tmp_path, capsys):
    url = _copy(digits_study, tmp_path)  # one study, named "digits"
    assert main(["report", "--storage", url, "--out", str(tmp_path / "r.html")]) == 0
    assert "report of study 'digits'" in capsys.readouterr().out


# --- dashboard -------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch):
    """Replace optuna_dashboard.run_server: record its arguments instead of serving."""
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    calls = []
    monkeypatch.setattr(
        optuna_dashboard, "run_server", lambda storage, **kwargs: calls.append((storage, kwargs))
    )
    return calls


def test_dashboard_refreshes_the_attachments_then_serves(digits_study, tmp_path, capsys, served):
    from optuna_nachos.dashboard import ConstraintView, attached_graph_ids, graph_id

    url = _copy(digits_study, tmp_path)
    assert main(["dashboard", "--storage", url, "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert "Refreshed study 'digits'" in out
    assert "Serving optuna-dashboard at http://127.0.0.1:8123/dashboard/" in out
    [(storage, kwargs)] = served
    assert isinstance(storage, ConstraintView)
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    study = optuna.load_study(study_name="digits", storage=url)
    assert graph_id("pareto_front") in attached_graph_ids(study)


def test_dashboard_of_one_study_and_without_refresh(digits_study, tmp_path, capsys, served):
    from optuna_nachos.dashboard import attached_graph_ids

    url = _copy(digits_study, tmp_path)
    optuna.create_study(study_name="other", storage=url)  # not an EENN study: left alone
    args = ["dashboard", "--storage", url, "--study-name", "digits", "--no-refresh"]
    assert main(args) == 0
    study_id = optuna.load_study(study_name="digits", storage=url)._study_id
    out = capsys.readouterr().out
    assert "Refreshed" not in out and f"/dashboard/studies/{study_id}" in out
    assert attached_graph_ids(optuna.load_study(study_name="digits", storage=url)) == []
    assert main(["dashboard", "--storage", url, "--host", "0.0.0.0"]) == 0
    out = capsys.readouterr().out
    assert "Skipped study 'other': not an EENN study" in out
    assert served[-1][1]["host"] == "0.0.0.0"


def test_dashboard_on_an_unknown_study(digits_study, tmp_path, capsys, served):
    url = _copy(digits_study, tmp_path)
    assert main(["dashboard", "--storage", url, "--study-name", "nope"]) == 2
    assert "no study 'nope'" in _error_line(capsys)
    assert not served


def test_dashboard_on_a_missing_storage_file(tmp_path, capsys, served):
    missing = tmp_path / "nachos.db"
    assert main(["dashboard", "--storage", f"sqlite:///{missing}"]) == 2
    assert f"no storage file {missing}" in _error_line(capsys)
    assert not served and not missing.exists()


def test_dashboard_when_the_port_is_taken(digits_study, tmp_path, capsys, monkeypatch):
    optuna_dashboard = pytest.importorskip("optuna_dashboard")

    def taken(storage, **kwargs):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(optuna_dashboard, "run_server", taken)
    url = _copy(digits_study, tmp_path)
    assert main(["dashboard", "--storage", url, "--no-refresh", "--port", "8124"]) == 2
    assert "cannot serve on 127.0.0.1:8124: Address already in use" in _error_line(capsys)


def test_without_optuna_dashboard_the_commands_say_how_to_install_it(
    digits_study, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    assert main(["dashboard", "--storage", digits_study.storage]) == 2
    assert 'pip install "optuna-nachos[dashboard]"' in _error_line(capsys)
    search = [
        "search",
        "--dataset",
        "digits",
        "--n-trials",
        "1",
        "--max-avg-macs",
        "2.7M",
        "--min-accuracy",
        "0.0",
        "--dashboard",
        "--storage",
        f"sqlite:///{tmp_path / 'x.db'}",
    ]
    assert main(search) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("Training on"), err  # the thread choice, then the one error line
    assert len(err) == 2 and 'pip install "optuna-nachos[dashboard]"' in err[1]
    assert not (tmp_path / "x.db").exists(), "the search stops before it starts"


@pytest.mark.slow
def test_search_with_dashboard_attaches_as_trials_finish(tmp_path, capsys, monkeypatch):
    pytest.importorskip("optuna_dashboard")
    from optuna_nachos.dashboard import attached_graph_ids, graph_id

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'nachos.db'}"
    code = main(
        [
            "search",
            "--dataset",
            "digits",
            "--sampler",
            "random",
            "--n-trials",
            "2",
            "--max-avg-macs",
            "2.7M",
            "--min-accuracy",
            "0.0",
            "--backbone-epochs",
            "1",
            "--warmup-epochs",
            "0",
            "--exit-epochs",
            "1",
            "--train-subset",
            "300",
            "--threads",
            "1",
            "--no-progress",
            "--dashboard",
            "--storage",
            url,
        ]
    )
    assert code == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="nachos", storage=url)
    assert graph_id("pareto_front") in attached_graph_ids(study)
    import optuna_dashboard

    note = optuna_dashboard.get_note(study)
    assert "optuna-nachos: study `nachos`" in note and "2 trials" in note
