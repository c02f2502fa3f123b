"""Every malformed configuration is rejected with an error naming the field."""

import json

import pytest

from golden_model.config import Config, ConfigError, default_config

BAD = [
    ({"layers": []}, "layers"),
    ({"layers": [2, 0, 1]}, "layers[1]"),
    ({"layers": [2, -3, 1]}, "layers[1]"),
    ({"layers": [2, 5000, 1]}, "layers[1]"),
    ({"layers": [2, 4.5, 1]}, "layers[1]"),
    ({"layers": "2-4-1"}, "layers"),
    ({"ticks_per_window": 0}, "ticks_per_window"),
    ({"ticks_per_window": -2}, "ticks_per_window"),
    ({"ticks_per_window": 4, "leak_shift": 0}, "leak_shift"),
    ({"ticks_per_window": 64, "leak_shift": 1}, "ticks_per_window"),  # gain too large
    ({"leak_shift": -1}, "leak_shift"),
    ({"current_frac": 16}, "current_frac"),
    ({"current_frac": 20}, "current_frac"),
    ({"weight_frac": 15}, "weight_frac"),  # no integer bit: 1.0 not representable
    ({"current_width": 40}, "current_width"),
    ({"weight_width": 1}, "weight_width"),
    ({"current_width": 16.0}, "current_width"),
    ({"rounding": "truncate"}, "rounding"),
    ({"rounding": 3}, "rounding"),
    ({"output": "sigmoid"}, "output"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**32}, "seed"),
    ({"seed": True}, "seed"),
    ({"seed": "7"}, "seed"),
    ({"learning_rate_shift": -1}, "learning_rate_shift"),
    (
        {"weight_frac": 20, "weight_width": 24, "current_frac": 4, "learning_rate_shift": 0},
        "learning_rate_shift",
    ),
    ({"gain_frac": 99}, "gain_frac"),
    ({"bias_init": float("nan")}, "bias_init"),
    ({"bias_init": "0.1"}, "bias_init"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("changes", "field"), BAD, ids=[f for _, f in BAD])
def test_invalid_value_names_the_field(changes, field):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(changes)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_unknown_key_and_bad_json():
    with pytest.raises(ConfigError, match="unknown key"):
        Config.from_json('{"layers": [2, 4, 1], "tick": 3}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        Config.from_json("{layers: [2]")
    with pytest.raises(ConfigError, match="JSON object"):
        Config.from_json("[1, 2]")


def test_json_round_trip(tmp_path):
    cfg = Config(layers=(3, 5, 2), ticks_per_window=8, leak_shift=3, rounding="stochastic", seed=9)
    path = tmp_path / "c.json"
    cfg.save(path)
    assert Config.load(path) == cfg
    assert json.loads(path.read_text())["layers"] == [3, 5, 2]
    # The same configuration always serialises to the same bytes.
    assert Config.load(path).to_json() == path.read_text()


def test_defaults_are_valid_and_distinct():
    xor, ar2 = default_config("xor"), default_config("ar2")
    assert xor.layers == (2, 8, 1) and ar2.rounding == "stochastic"
    with pytest.raises(ValueError, match="unknown circuit"):
        default_config("mnist")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        Config.load(tmp_path / "absent.json")
