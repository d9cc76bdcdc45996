"""attach(): figures and the summary note, as optuna-dashboard serves them."""

import json
import sys

import optuna
import plotly.graph_objects as go
import pytest

pytest.importorskip("optuna_dashboard")

import optuna_dashboard  # noqa: E402

import optuna_nachos as nachos  # noqa: E402
from optuna_nachos.dashboard import (  # noqa: E402
    GRAPH_ID_PREFIX,
    DashboardCallback,
    attach,
    attached_graph_ids,
    dashboard_app,
    graph_id,
)
from optuna_nachos.dashboard._attach import NOTE_BEGIN, NOTE_END  # noqa: E402
from optuna_nachos.visualization import study_figures  # noqa: E402


def _study_detail(wsgi_get, storage, study):
    status, body = wsgi_get(dashboard_app(storage), f"/api/studies/{study._study_id}")
    assert status.startswith("200"), body[:500]
    return json.loads(body)


def test_attach_lists_every_figure_and_the_note_in_the_dashboard_api(study_copy, wsgi_get):
    study, url = study_copy
    figures = study_figures(study)
    attachments = attach(study)

    assert attachments.graph_ids == {name: graph_id(name) for name in figures}
    detail = _study_detail(wsgi_get, url, study)
    served = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    assert set(served) == set(attachments.graph_ids.values())
    pareto = served[graph_id("pareto_front")]
    assert pareto["layout"]["title"]["text"] == figures["pareto_front"].layout.title.text

    note = detail["note"]["body"]
    assert note == attachments.note == optuna_dashboard.get_note(study)
    assert note.count(NOTE_BEGIN) == 1 and note.count(NOTE_END) == 1
    assert study.study_name in note
    front = nachos.admissible_trials(study)
    assert front, "the digits study has admissible trials"
    table_rows = [line for line in note.splitlines() if line.startswith("| ")]
    knees = {t.number for t in nachos.high_tradeoff_trials(study)}
    for trial in front:
        mark = " *" if trial.number in knees else ""  # the best trade-offs, marked
        row = f"| {trial.number}{mark} | {trial.values[0]:.4f} |"
        assert any(line.startswith(row) for line in table_rows)
    assert f"{nachos.hypervolume(study):.4f}" in note
    assert "max_avg_macs" in note and "min_accuracy" in note  # settings and constraints


def test_attaching_again_replaces_instead_of_duplicating(study_copy, wsgi_get):
    study, url = study_copy
    first = attach(study)
    keys_before = sorted(study._storage.get_study_system_attrs(study._study_id))
    second = attach(study)
    assert second == first
    assert sorted(study._storage.get_study_system_attrs(study._study_id)) == keys_before
    detail = _study_detail(wsgi_get, url, study)
    ids = [g["id"] for g in detail["plotly_graph_objects"]]
    assert sorted(ids) == sorted(first.graph_ids.values())
    assert detail["note"]["body"].count(NOTE_BEGIN) == 1


def test_the_users_own_note_is_kept(study_copy):
    study, _ = study_copy
    optuna_dashboard.save_note(study, "My remarks: trial 3 looks promising.")
    attach(study)
    attach(study)
    note = optuna_dashboard.get_note(study)
    assert note.count(NOTE_BEGIN) == 1
    assert "My remarks: trial 3 looks promising." in note
    # Text written after the summary, in the dashboard, is kept as well.
    optuna_dashboard.save_note(study, note + "\nMore remarks.\n")
    attach(study)
    note = optuna_dashboard.get_note(study)
    assert note.count(NOTE_BEGIN) == 1 and "More remarks." in note and "My remarks" in note


def test_a_figure_attached_before_but_missing_now_becomes_a_placeholder(study_copy, wsgi_get):
    study, url = study_copy
    figure = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout={"title": "stand-in"})
    attach(study, figures={"pareto_front": figure, "architecture": figure})
    attach(study, figures={"pareto_front": figure})
    assert attached_graph_ids(study) == sorted([graph_id("architecture"), graph_id("pareto_front")])
    served = {
        g["id"]: json.loads(g["graph_object"])
        for g in _study_detail(wsgi_get, url, study)["plotly_graph_objects"]
    }
    assert "nothing to show yet" in served[graph_id("architecture")]["layout"]["title"]["text"]
    assert served[graph_id("pareto_front")]["layout"]["title"]["text"] == "stand-in"


def test_graph_ids_are_valid_and_stable():
    assert graph_id("pareto_front") == GRAPH_ID_PREFIX + "pareto_front"
    assert graph_id("a b/c") == GRAPH_ID_PREFIX + "a_b_c"


def test_missing_optuna_dashboard_is_a_clear_import_error(study_copy, monkeypatch):
    study, _ = study_copy
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    with pytest.raises(ImportError, match=r'pip install "optuna-nachos\[dashboard\]"'):
        attach(study)
    with pytest.raises(ImportError, match="optuna-nachos"):
        DashboardCallback()


def test_the_callback_refreshes_and_never_stops_the_search(study_copy, monkeypatch, caplog):
    study, _ = study_copy
    callback = DashboardCallback(every=2)
    trial = study.trials[-1]
    callback(study, trial)
    assert attached_graph_ids(study) == []  # every second trial only
    callback(study, trial)
    assert graph_id("pareto_front") in attached_graph_ids(study)

    def broken(*args, **kwargs):
        raise RuntimeError("broken figure")

    monkeypatch.setattr("optuna_nachos.dashboard._attach.attach", broken)
    optuna.logging.enable_propagation()
    try:
        callback(study, trial)
        callback(study, trial)
    finally:
        optuna.logging.disable_propagation()
    assert "broken figure" in caplog.text
