import pytest

from optuna_nachos.space import MobileNetV3Space, _registry, get_space, list_spaces, register_space


@pytest.fixture
def restore_spaces():
    saved = dict(_registry._SPACES)
    yield
    _registry._SPACES.clear()
    _registry._SPACES.update(saved)


def test_builtin_spaces():
    assert {"mobilenetv3", "edanas"} <= set(list_spaces())
    assert list_spaces() == sorted(list_spaces())
    assert get_space("mobilenetv3") == MobileNetV3Space()
    assert get_space("edanas") == MobileNetV3Space.edanas()
    assert get_space("edanas").threshold_genes == (0.1, 0.2, 1.0)


def test_get_space_passes_settings():
    space = get_space("mobilenetv3", min_exits=0, resolutions=(32, 64))
    assert space.min_exits == 0
    assert space.resolutions == (32, 64)
    assert get_space("edanas", exit_stages=(2, 3)).exit_stages == (2, 3)
    with pytest.raises(TypeError):
        get_space("mobilenetv3", width=1.2)


def test_unknown_space_lists_the_registered_ones():
    message = r"unknown search space 'resnet'; registered search spaces: \[.*'edanas'"
    with pytest.raises(KeyError, match=message):
        get_space("resnet")


@pytest.mark.usefixtures("restore_spaces")
def test_register_space():
    register_space("shallow", lambda **kw: MobileNetV3Space(depths=(2,), **kw))
    assert "shallow" in list_spaces()
    space = get_space("shallow", min_exits=0)
    assert space.depths == (2,) and space.min_exits == 0
    with pytest.raises(ValueError, match=r"search space 'shallow' is already registered"):
        register_space("shallow", MobileNetV3Space)
    with pytest.raises(ValueError, match=r"'mobilenetv3' is already registered; pass overwrite"):
        register_space("mobilenetv3", MobileNetV3Space.edanas)
    assert get_space("mobilenetv3") == MobileNetV3Space()
    register_space("shallow", MobileNetV3Space, overwrite=True)
    assert get_space("shallow") == MobileNetV3Space()


def test_registry_is_restored_after_registering():
    assert "shallow" not in list_spaces()
