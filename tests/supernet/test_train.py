"""Supernet training: folder contents, metadata, exact resume, settings."""

import json

import pytest
import torch

from optuna_nachos.supernet import (
    CHECKPOINT_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    SupernetError,
    SupernetSettings,
    load_supernet,
    train_supernet,
)

from .conftest import tiny_settings


def test_folder_holds_weights_and_metadata_but_no_checkpoint(trained, digits16):
    folder = trained.folder
    assert {p.name for p in folder.iterdir()} == {WEIGHTS_FILE, METADATA_FILE}
    state = torch.load(folder / WEIGHTS_FILE, weights_only=True)
    assert any(key.startswith("backbone.") for key in state)
    assert any(key.startswith("heads.") for key in state)
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert meta["dataset"] == digits16.name
    assert (meta["num_classes"], meta["in_channels"], meta["resolution"]) == (10, 1, 16)
    assert meta["mean"] == list(digits16.mean) and meta["std"] == list(digits16.std)
    assert meta["complete"] and meta["epochs_done"] == 2
    assert meta["space"]["kernel_sizes"] == [3, 5, 7]
    assert meta["versions"]["ofa"] != "not installed"
    assert len(meta["history"]) == 2
    assert meta["weights_dtype"] == "float32"
    assert meta["train_seconds"] == pytest.approx(sum(r["seconds"] for r in meta["history"]))
    for record in meta["history"]:
        for name in ("largest", "smallest"):
            scores = record["val"][name]
            assert 0.0 <= scores["final_accuracy"] <= 1.0
            assert len(scores["exit_accuracies"]) == 5
        assert record["losses"]["largest"] > 0


def test_training_learns(trained):
    history = trained.supernet.metadata["history"]
    for name in ("largest", "smallest"):
        assert history[-1]["losses"][name] < history[0]["losses"][name], name
    # The heads start when the warm-up (the first epoch) ends.
    assert history[0]["losses"]["heads"] == 0.0 < history[-1]["losses"]["heads"]


def test_load_round_trip(trained):
    loaded = load_supernet(trained.folder)
    original = trained.supernet.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key].cpu()), key
    assert loaded.weights_sha256 == trained.supernet.weights_sha256
    assert len(loaded.weights_sha256) == 64


def test_resume_after_a_kill_gives_the_uninterrupted_weights(tmp_path, digits16, trained):
    killed = tmp_path / "killed"
    settings = tiny_settings(epochs=2)

    class Kill(Exception):
        pass

    import optuna_nachos.supernet._train as train_module

    original = train_module.subnet_accuracies
    calls = {"n": 0}

    def scores_then_kill(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second epoch's evaluation: die before its checkpoint
            raise Kill
        return original(*args, **kwargs)

    train_module.subnet_accuracies = scores_then_kill
    try:
        with pytest.raises(Kill):
            train_supernet(digits16, killed, settings=settings, metadata={"data_seed": 0})
    finally:
        train_module.subnet_accuracies = original
    assert not (killed / WEIGHTS_FILE).exists()
    with pytest.raises(SupernetError, match="has not finished"):
        load_supernet(killed)
    resumed = train_supernet(digits16, killed, settings=settings, metadata={"data_seed": 0})
    reference = trained.supernet.state_dict()
    for key, value in resumed.state_dict().items():
        assert torch.equal(value.cpu(), reference[key].cpu()), key
    assert [r["epoch"] for r in resumed.metadata["history"]] == [1, 2]


def test_resume_with_other_settings_is_refused(trained, digits16):
    with pytest.raises(SupernetError, match="holds a supernet of other settings"):
        train_supernet(digits16, trained.folder, settings=tiny_settings(lr=0.2))
    # The finished supernet is untouched, and the same settings find it trained.
    again = train_supernet(
        digits16, trained.folder, settings=tiny_settings(), metadata={"data_seed": 0}
    )
    assert again.weights_sha256 == trained.supernet.weights_sha256


def test_not_a_supernet_folder(tmp_path):
    with pytest.raises(SupernetError, match="not a supernet folder"):
        load_supernet(tmp_path / "missing")
    (tmp_path / METADATA_FILE).write_text("{not json")
    with pytest.raises(SupernetError, match="not valid JSON"):
        load_supernet(tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("epochs", 0, "epochs must be an integer >= 1"),
        ("lr", -1.0, "lr must be finite"),
        ("momentum", 1.0, "momentum must lie"),
        ("random_subnets", -1, "random_subnets must be"),
        ("exit_heads", ("nope",), "unknown exit heads"),
        ("exit_heads", (), "non-empty"),
    ],
)
def test_settings_are_validated(name, value, message):
    with pytest.raises(ValueError, match=message):
        SupernetSettings(**{name: value})


def test_settings_round_trip():
    settings = SupernetSettings(epochs=3, exit_heads=("nachos", "pool_linear"))
    assert SupernetSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    with pytest.raises(ValueError, match="unknown SupernetSettings keys"):
        SupernetSettings.from_dict({"epoch": 3})


def test_time_limit_stops_after_an_epoch_and_resumes(tmp_path, digits16, trained):
    folder = tmp_path / "limited"
    settings = tiny_settings(epochs=2)
    stopped = train_supernet(
        digits16, folder, settings=settings, metadata={"data_seed": 0}, time_limit=1e-9
    )
    assert stopped.metadata["epochs_done"] == 1 and not stopped.metadata["complete"]
    assert stopped.weights_sha256 is None
    assert not (folder / WEIGHTS_FILE).exists()
    on_disk = json.loads((folder / METADATA_FILE).read_text())
    assert on_disk["epochs_done"] == 1 and not on_disk["complete"]
    resumed = train_supernet(
        digits16, folder, settings=settings, metadata={"data_seed": 0}, time_limit=1e-9
    )
    assert resumed.metadata["complete"] and resumed.metadata["epochs_done"] == 2
    assert resumed.weights_sha256 == trained.supernet.weights_sha256


def test_time_limit_must_be_positive(tmp_path, digits16):
    with pytest.raises(ValueError, match="time_limit"):
        train_supernet(digits16, tmp_path / "x", settings=tiny_settings(), time_limit=0)


def test_checkpoint_kept_on_request(tmp_path, digits16, trained):
    folder = tmp_path / "kept"
    train_supernet(
        digits16, folder, settings=tiny_settings(keep_checkpoint=True), metadata={"data_seed": 0}
    )
    assert (folder / CHECKPOINT_FILE).is_file()


def test_half_precision_weights_load_into_float32(tmp_path, digits16, trained):
    folder = tmp_path / "half"
    half = train_supernet(
        digits16,
        folder,
        settings=tiny_settings(weights_dtype="float16"),
        metadata={"data_seed": 0},
    )
    state = torch.load(folder / WEIGHTS_FILE, weights_only=True)
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert any(v.dtype == torch.int64 for v in state.values())  # BatchNorm batch counters
    # The training is the same: only the file's precision differs.
    full = (trained.folder / WEIGHTS_FILE).stat().st_size
    assert (folder / WEIGHTS_FILE).stat().st_size < 0.55 * full
    loaded = load_supernet(folder)
    assert loaded.metadata["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for key, value in loaded.state_dict().items():
        expected = half.state_dict()[key].cpu()
        if value.is_floating_point():
            assert torch.equal(value, expected.half().float()), key
        else:
            assert torch.equal(value, expected), key
    # The file's hash is recorded and checked as for full-precision weights.
    assert loaded.weights_sha256 == half.weights_sha256


def test_heads_learn(tmp_path, digits16_all):
    """After a short training on digits, every exit head the supernet holds (every position
    and pool size) classifies the validation images of the largest and of the smallest
    subnet clearly above chance (0.1)."""
    import copy

    from optuna_nachos.supernet import largest_config, smallest_config
    from optuna_nachos.supernet._network import head_key

    torch.set_num_threads(1)
    data = digits16_all
    supernet = train_supernet(
        data,
        tmp_path / "sn",
        settings=tiny_settings(epochs=4, batch_size=64, head_batch_fraction=1.0),
    )
    images = torch.stack([data.val[i][0] for i in range(len(data.val))])
    labels = torch.tensor([int(data.val[i][1]) for i in range(len(data.val))])
    accuracies = {}
    for name, config in (
        ("largest", largest_config(resolution=16)),
        ("smallest", smallest_config(resolution=16)),
    ):
        probe = copy.deepcopy(supernet)
        probe.set_active(config)
        probe.train()  # BatchNorm on the batch's statistics: the subnet's own
        with torch.no_grad():
            features, _ = probe.forward_stages(images)
            for position, feature in enumerate(features):
                for pool in probe.head_pools("nachos", position):
                    out = probe.heads[head_key("nachos", position, pool)](feature)
                    correct = (out[:, :-1].argmax(dim=1) == labels).float().mean()
                    accuracies[name, position, pool] = float(correct)
    assert len(accuracies) == 2 * len(supernet.heads)
    low = {key: a for key, a in accuracies.items() if a < 0.2}
    assert not low, f"heads near chance: {low}"
