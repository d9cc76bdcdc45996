"""The one shape of the package's registries, and the four registries that use it."""

from __future__ import annotations

import pytest

from optuna_nachos import _registry
from optuna_nachos.cost import _backends
from optuna_nachos.data import _registry as datasets
from optuna_nachos.models import _heads
from optuna_nachos.space import _registry as spaces


def test_a_registry_adds_finds_and_names_its_entries():
    registry = _registry.Registry("widget", hint="Register one with add().")
    registry.add("b", 2)
    registry.add("a", 1)
    assert (
        registry.entry("a") == 1 and registry.names() == ["a", "b"] and list(registry) == ["b", "a"]
    )
    with pytest.raises(ValueError, match="widget 'a' is already registered; pass overwrite=True"):
        registry.add("a", 3)
    registry.add("a", 3, overwrite=True)
    assert registry.entry("a") == 3
    with pytest.raises(KeyError) as error:
        registry.entry("c")
    assert "unknown widget 'c'; registered widgets: ['a', 'b']. Register one with add()." in str(
        error.value
    )
    copy = registry.copy()
    copy.add("c", 4)
    assert "c" not in registry and copy.kind == "widget"


def test_names_are_normalized_before_every_use():
    registry = _registry.Registry("dataset", unknown=LookupError, normalize=str.lower)
    registry.add("MNIST", 1)
    assert registry.entry("mnist") == 1 and registry.names() == ["mnist"]
    with pytest.raises(LookupError, match="unknown dataset 'nope'"):
        registry.entry("nope")


@pytest.mark.parametrize(
    ("registry", "kind"),
    [
        (spaces._SPACES, "search space"),
        (datasets._DATASETS, "dataset"),
        (_heads._EXIT_HEADS, "exit head"),
        (_backends._BACKENDS, "latency back end"),
    ],
)
def test_the_package_registries_share_the_shape(registry, kind):
    assert isinstance(registry, _registry.Registry) and registry.kind == kind
    assert registry.names()
    with pytest.raises(Exception, match=f"unknown {kind} 'no-such-name'; registered {kind}s: "):
        registry.entry("no-such-name")
