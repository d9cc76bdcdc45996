"""calibrate_and_evaluate: thresholds chosen on validation, the test split now or later."""

from types import SimpleNamespace

import pytest

from optuna_nachos.train import calibrate_and_evaluate, evaluate_on_test


def test_the_test_split_can_follow_the_calibration(make_network, make_dataset) -> None:
    network = make_network()
    data = SimpleNamespace(val=make_dataset(40, seed=1), test=make_dataset(30, seed=2))
    costs = [1.0, 2.0, 3.0, 4.0, 5.0]
    both = calibrate_and_evaluate(network, data, costs, max_avg_macs=3.0, curve=True)
    validation_only = calibrate_and_evaluate(network, data, costs, max_avg_macs=3.0, test=False)
    assert validation_only.test is None and validation_only.curve is None
    assert validation_only.test_feasible is None
    assert validation_only.to_dict()["test"] is None
    assert validation_only.validation == both.validation
    assert validation_only.thresholds == both.thresholds

    later = evaluate_on_test(network, data, validation_only, costs, curve=True)
    assert later.test == both.test and later.curve == both.curve
    assert later.test_feasible == both.test_feasible
    assert evaluate_on_test(network, data, validation_only, costs).curve is None


def test_a_missing_split_is_named(make_network, make_dataset) -> None:
    network = make_network()
    costs = [1.0, 2.0, 3.0, 4.0, 5.0]
    no_test = SimpleNamespace(val=make_dataset(20), test=None)
    with pytest.raises(ValueError, match="non-empty .test split"):
        calibrate_and_evaluate(network, no_test, costs)
    no_val = SimpleNamespace(val=[], test=make_dataset(20))
    with pytest.raises(ValueError, match="non-empty .val split"):
        calibrate_and_evaluate(network, no_val, costs)
