import pytest

from optuna_nachos import high_tradeoff_trials
from optuna_nachos.visualization import FIGURE_NAMES, save_figures, study_figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_study_figures_by_name(digits_study):
    study = digits_study.study
    figures = study_figures(study)
    assert tuple(figures) == FIGURE_NAMES
    best = high_tradeoff_trials(study, n=1)[0]
    for name in ("exit_metrics", "operating_curve", "architecture"):
        assert f"trial {best.number}" in figures[name].layout.title.text
    other = next(t for t in study.trials if "operating_curve" in t.user_attrs and t != best)
    chosen = study_figures(study, trial=other.number)
    assert f"trial {other.number}" in chosen["exit_metrics"].layout.title.text
    with pytest.raises(ValueError, match="no trial 999"):
        study_figures(study, trial=999)


def test_untrained_chosen_trial_keeps_only_its_architecture(digits_study):
    skipped = next(t for t in digits_study.study.trials if "skipped_training" in t.user_attrs)
    figures = study_figures(digits_study.study, trial=skipped)
    assert "architecture" in figures
    assert "exit_metrics" not in figures and "operating_curve" not in figures


def test_study_without_admissible_trial(settings_study, add_trial):
    add_trial(settings_study, 0.3, 50.0)
    figures = study_figures(settings_study)
    assert tuple(figures) == ("pareto_front", "exit_ratios", "hypervolume_history")


def _image_export_problem() -> str | None:
    """Why plotly cannot export images on this machine (kaleido or Chrome missing), or None:
    asked of plotly directly, not of the code under test, which turns failures into HTML."""
    import plotly.graph_objects as go
    import plotly.io as pio

    try:
        pio.to_image(go.Figure(), format="png", width=20, height=20)
    except Exception as error:
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


def test_save_figures_writes_html_and_images(digits_study, tmp_path):
    problem = _image_export_problem()
    paths = save_figures(digits_study.study, tmp_path / "figures", include_plotlyjs="cdn")
    assert tuple(paths) == FIGURE_NAMES
    for name in FIGURE_NAMES:
        html = tmp_path / "figures" / f"{name}.html"
        assert html.is_file() and "plotly" in html.read_text()
    if problem is not None:  # the documented fallback: the HTML pages stand for the images
        assert paths == {name: tmp_path / "figures" / f"{name}.html" for name in FIGURE_NAMES}
        assert not list((tmp_path / "figures").glob("*.png"))
        return
    for name, path in paths.items():
        assert path == tmp_path / "figures" / f"{name}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_save_figures_html_only(settings_study, add_trial, tmp_path):
    add_trial(settings_study, 0.3, 50.0)
    paths = save_figures(settings_study, tmp_path, image_format=None, include_plotlyjs="cdn")
    assert paths == {
        name: tmp_path / f"{name}.html"
        for name in ("pareto_front", "exit_ratios", "hypervolume_history")
    }
    assert all(path.is_file() for path in paths.values())


def test_save_figures_misuse(settings_study, tmp_path):
    with pytest.raises(ValueError, match="image_format"):
        save_figures(settings_study, tmp_path, image_format="bmp")
    with pytest.raises(ValueError, match="nothing to write"):
        save_figures(settings_study, tmp_path, image_format=None, include_html=False)


def test_failed_image_export_is_reported_once_in_one_line(tmp_path, monkeypatch, nachos_log):
    import plotly.graph_objects as go
    import plotly.io

    from optuna_nachos._logging import LOGGER_NAME
    from optuna_nachos.visualization._save import write_images

    calls = []

    def no_chrome(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("Kaleido requires Google Chrome to be installed.\n\nEither ...\n")

    monkeypatch.setattr(plotly.io, "write_images", no_chrome, raising=False)
    monkeypatch.setattr(go.Figure, "write_image", no_chrome)
    figure = go.Figure()
    with nachos_log.at_level("DEBUG", logger=LOGGER_NAME):
        assert not write_images({"a": figure}, {"a": tmp_path / "a.png"})
        assert not write_images({"b": figure}, {"b": tmp_path / "b.png"})
    warnings = [r for r in nachos_log.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and len(calls) == 1
    message = warnings[0].getMessage()
    assert "\n" not in message
    assert "RuntimeError: Kaleido requires Google Chrome to be installed." in message
    assert not (tmp_path / "a.png").exists()
