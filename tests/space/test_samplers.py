"""Every Optuna sampler can search the flat NACHOS space, through SQLite storage."""

import warnings

import optuna
import pytest
from sqlalchemy import event

from optuna_nachos.space import MobileNetV3Space, config_from_params, suggest_eenn

N_TRIALS = 20
PARAM_NAMES = set(MobileNetV3Space().distributions())

SAMPLERS = {
    "default": lambda: None,  # multi-objective TPE in Optuna 5
    "tpe_multivariate_group": lambda: optuna.samplers.TPESampler(
        seed=0, multivariate=True, group=True
    ),
    "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=0, population_size=6),
    "nsga3": lambda: optuna.samplers.NSGAIIISampler(seed=0, population_size=6),
    # Each GP trial fits a model and optimizes log-EHVI over 49 categorical parameters
    # (seconds per trial), so most of the 20 trials are start-up trials.
    "gp": lambda: optuna.samplers.GPSampler(seed=0, n_startup_trials=16),
    "random": lambda: optuna.samplers.RandomSampler(seed=0),
    "qmc": lambda: optuna.samplers.QMCSampler(seed=0),
}


def sqlite_storage(path):
    """SQLite storage without fsync: the same SQL types as a user's file, much faster."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")

    @event.listens_for(storage.engine, "connect")
    def _no_sync(connection, _record):
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = MEMORY")

    storage.engine.dispose()  # later connections get the pragmas
    return storage


def create_study(path, study_name, sampler_name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.create_study(
            storage=sqlite_storage(path),
            study_name=study_name,
            directions=["minimize", "minimize"],
            sampler=SAMPLERS[sampler_name](),
        )


def optimize(study, objective):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=N_TRIALS)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_searches_the_space_on_sqlite(name, tmp_path):
    path = tmp_path / "x.db"
    study = create_study(path, f"nachos-{name}", name)
    if name == "default":
        assert type(study.sampler) is optuna.samplers.TPESampler
    configs = {}

    def objective(trial):
        cfg = suggest_eenn(trial)
        configs[trial.number] = cfg
        assert config_from_params(trial.params) == cfg
        return float(sum(cfg.depths)), float(cfg.num_early_exits)

    optimize(study, objective)

    assert len(configs) == N_TRIALS
    reloaded = optuna.load_study(study_name=f"nachos-{name}", storage=f"sqlite:///{path}")
    trials = reloaded.trials
    assert len(trials) == N_TRIALS
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.params) == PARAM_NAMES
        assert all(type(v) is bool for k, v in trial.params.items() if k.startswith("exit_after"))
        cfg = config_from_params(trial.params)
        assert cfg == configs[trial.number]
        assert trial.values == [float(sum(cfg.depths)), float(cfg.num_early_exits)]
    assert len({configs[n] for n in configs}) > 1  # the sampler does explore


@pytest.mark.parametrize("name", ["tpe_multivariate_group", "nsga2"])
def test_edanas_genes_survive_sqlite(name, tmp_path):
    space = MobileNetV3Space.edanas()
    path = tmp_path / "x.db"
    study = create_study(path, "edanas", name)
    configs = {}

    def objective(trial):
        cfg = suggest_eenn(trial, space)
        configs[trial.number] = cfg
        return float(sum(cfg.depths)), float(sum(cfg.exit_thresholds))

    optimize(study, objective)
    trials = optuna.load_study(study_name="edanas", storage=f"sqlite:///{path}").trials
    assert len(trials) == N_TRIALS
    for trial in trials:
        assert set(trial.params) == set(space.distributions())
        genes = [trial.params[f"exit{s}_threshold"] for s in range(1, 5)]
        assert all(type(g) is float and g in (0.1, 0.2, 1.0) for g in genes)
        cfg = config_from_params(trial.params, space)
        assert cfg == configs[trial.number]
        assert cfg.exit_thresholds == tuple(g for g in genes if g < 1.0)
        assert cfg.exit_stages == tuple(s for s, g in zip(range(1, 5), genes) if g < 1.0)
