"""HealthConfig: defaults from the shipped JSON, deep-merged overrides, errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.config import (
    DEFAULT_CONFIG,
    DEFAULT_CONFIG_PATH,
    ENV_VAR,
    SIGNALS,
    HealthConfig,
    HealthConfigError,
    deep_merge,
    load_health_config,
)

C = DEFAULT_CONFIG


def invalid(overrides: dict[str, Any]) -> str:
    with pytest.raises(HealthConfigError) as exc:
        C.with_overrides(overrides)
    return str(exc.value)


def write(tmp_path: Path, data: Any, name: str = "override.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


# ------------------------------------------------------------------------ defaults


def test_defaults_come_from_the_shipped_json() -> None:
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    assert HealthConfig.model_validate(raw) == DEFAULT_CONFIG
    assert C.version == raw["version"] == "2026.12-2"


def test_default_values() -> None:
    assert tuple(C.weights) == SIGNALS
    assert sum(C.weights.values()) == 100
    assert (C.bands.green_min, C.bands.amber_min) == (70, 45)
    assert C.churn.renewal_days == 60
    assert C.churn.nps_detractor_max == 6
    assert C.lean.muda.utilization_below == 0.6
    assert C.lean.muda.redeploy_min_days == 120
    assert C.expansion.seat_utilization_min == 0.9
    assert set(C.catalogue) == {
        "core",
        "reports",
        "dashboards",
        "automation",
        "api",
        "integrations",
    }
    assert 12 <= len(C.features()) <= 16
    assert C.module_price("automation") == 90
    assert C.module_price("nope") is None


def test_round_trips_through_json() -> None:
    assert HealthConfig.model_validate_json(C.model_dump_json()) == C


def test_weights_order_in_the_file_does_not_matter() -> None:
    reversed_weights = dict(reversed(list(C.weights.items())))
    data = C.model_dump(mode="json") | {"weights": reversed_weights}
    config = HealthConfig.model_validate(data)
    assert tuple(config.weights) == SIGNALS
    assert config == C


# ----------------------------------------------------------------------- loading


def test_load_without_override_is_default() -> None:
    assert load_health_config() == C
    assert load_health_config(env={}) == C
    assert load_health_config(env={ENV_VAR: ""}) == C


def test_partial_file_is_deep_merged(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"version": "acme-1", "weights": {"nps": 20}, "bands": {"green_min": 75}},
    )
    config = load_health_config(path)
    assert config.version == "acme-1"
    assert config.weights["nps"] == 20
    assert (
        config.weights["seat_utilization"] == DEFAULT_CONFIG.weights["seat_utilization"]
    )  # untouched
    assert config.bands.green_min == 75 and config.bands.amber_min == 45
    assert config.catalogue == C.catalogue


def test_env_var_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"churn": {"renewal_days": 90}})
    assert load_health_config(env={ENV_VAR: str(path)}).churn.renewal_days == 90


def test_path_argument_wins_over_env(tmp_path: Path) -> None:
    from_env = write(tmp_path, {"version": "env"}, "env.json")
    from_arg = write(tmp_path, {"version": "arg"}, "arg.json")
    assert load_health_config(str(from_arg), env={ENV_VAR: str(from_env)}).version == "arg"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HealthConfigError, match=r"not found: .*nope\.json"):
        load_health_config(tmp_path / "nope.json")


def test_bad_json(tmp_path: Path) -> None:
    with pytest.raises(HealthConfigError, match=r"not valid JSON: .* line 1"):
        load_health_config(write(tmp_path, "{nope"))
    with pytest.raises(HealthConfigError, match="must hold a JSON object"):
        load_health_config(write(tmp_path, [1, 2]))


def test_file_error_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, {"weights": {"nsp": 5}})
    with pytest.raises(HealthConfigError) as exc:
        load_health_config(path)
    message = str(exc.value)
    assert str(path) in message
    assert "weights" in message and "nsp" in message


def test_deep_merge_semantics() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}, "d": 1}
    assert deep_merge(base, {"a": 5}) == {"a": 5, "d": 1}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # not mutated


# -------------------------------------------------------------------- validation


def test_unknown_signal_rejected() -> None:
    message = invalid({"weights": {"nsp": 5}})
    assert message.startswith("invalid health config (overrides): weights:")
    assert "unknown signal(s) ['nsp']" in message


def test_negative_weight_rejected() -> None:
    assert "weights must be >= 0: ['nps']" in invalid({"weights": {"nps": -1}})


def test_all_zero_weights_rejected() -> None:
    assert "weights must sum to more than 0" in invalid({"weights": dict.fromkeys(SIGNALS, 0)})


def test_missing_weight_rejected() -> None:
    data = C.model_dump(mode="json")
    del data["weights"]["nps"]
    with pytest.raises(ValueError, match="missing weight for signal"):
        HealthConfig.model_validate(data)


def test_band_order_rejected() -> None:
    message = invalid({"bands": {"amber_min": 70}})
    assert "bands" in message and "amber_min (70.0) must be below green_min (70.0)" in message


def test_band_range_rejected() -> None:
    assert "bands.green_min" in invalid({"bands": {"green_min": 101}})
    assert "bands.amber_min" in invalid({"bands": {"amber_min": -1}})


def test_unknown_field_rejected_at_every_level() -> None:
    assert "colour" in invalid({"colour": "red"})
    assert "bands.yellow_min" in invalid({"bands": {"yellow_min": 50}})
    assert "lean.muda.utilisation_below" in invalid({"lean": {"muda": {"utilisation_below": 0.5}}})


def test_window_typo_rejected() -> None:
    # Windows (facts.py) ignores unknown keys on its own; the config must not.
    message = invalid({"windows": {"activty_days": 30}})
    assert "windows" in message and "activty_days" in message
    assert "window lengths must be positive" in invalid({"windows": {"nps_days": 0}})


def test_signal_param_errors_name_the_field() -> None:
    message = invalid({"signals": {"last_interaction": {"full_days": 200}}})
    assert "signals.last_interaction" in message and "full_days must be below zero_days" in message
    assert "signals.stakeholder_engagement" in invalid(
        {"signals": {"stakeholder_engagement": {"engaged_points": 50}}}
    )
    assert "strictly increasing" in invalid(
        {"signals": {"nps": {"curve": [[0, 0], [0, 10], [10, 100]]}}}
    )
    assert "must not decrease" in invalid({"signals": {"nps": {"curve": [[0, 50], [10, 40]]}}})


def test_churn_flag_weights_validated() -> None:
    message = invalid({"churn": {"flag_weights": {"vibes": 2}}})
    assert "churn.flag_weights" in message and "vibes" in message
    assert "high_points must not exceed critical_points" in invalid({"churn": {"high_points": 9}})


def test_lean_order_validated() -> None:
    assert "lean.muda" in invalid({"lean": {"muda": {"high_below": 0.5}}})
    assert "lean.mura" in invalid({"lean": {"mura": {"cv_high": 0.4}}})
    assert "lean.muri.spike_ratio" in invalid({"lean": {"muri": {"spike_ratio": 1.0}}})


def test_catalogue_validated() -> None:
    bad_prefix = {
        "catalogue": {
            "reports": {
                "features": [{"event_type": "dashboards.x", "label": "x", "benchmark": 0.1}]
            }
        }
    }
    assert "must start with its module name 'reports.'" in invalid(bad_prefix)
    bad_benchmark = {
        "catalogue": {
            "api": {"features": [{"event_type": "api.call", "label": "x", "benchmark": 0}]}
        }
    }
    assert "catalogue.api.features.0.benchmark" in invalid(bad_benchmark)
    assert "expansion.integrations_module 'connectors'" in invalid(
        {"expansion": {"integrations_module": "connectors"}}
    )


def test_config_is_immutable() -> None:
    with pytest.raises(ValueError, match="frozen"):
        C.bands.green_min = 10  # type: ignore[misc]


# ------------------------------------------------- removing defaults, event types


def test_null_deletes_a_default_catalogue_module(tmp_path: Path) -> None:
    config = load_health_config(write(tmp_path, {"catalogue": {"automation": None}}))
    assert "automation" not in config.catalogue
    assert set(config.catalogue) == set(C.catalogue) - {"automation"}


def test_replace_swaps_the_whole_catalogue(tmp_path: Path) -> None:
    app = {
        "label": "App",
        "price_per_seat": 0,
        "features": [{"event_type": "app.open", "label": "Open", "benchmark": 0.5}],
    }
    path = write(
        tmp_path,
        {
            "catalogue": {"$replace": True, "app": app},
            # the integration rule names catalogue modules: turn it off (null = default None)
            "expansion": {"api_module": None, "integrations_module": None},
        },
    )
    config = load_health_config(path)
    assert list(config.catalogue) == ["app"]
    assert config.expansion.api_module is None and config.expansion.integrations_module is None


def test_a_catalogue_without_the_expansion_modules_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, {"catalogue": {"api": None}})
    with pytest.raises(HealthConfigError, match=r"expansion\.api_module .api. is not a catalogue"):
        load_health_config(path)


def test_deleting_a_required_section_names_it(tmp_path: Path) -> None:
    with pytest.raises(HealthConfigError, match=r"bands: Field required"):
        load_health_config(write(tmp_path, {"bands": None}))


def test_login_event_types_are_configuration(tmp_path: Path) -> None:
    assert C.events.login == ["login"]
    config = load_health_config(write(tmp_path, {"events": {"login": ["session_start", "*"]}}))
    assert config.events.login == ["*", "session_start"]
    with pytest.raises(HealthConfigError, match=r"events\.login"):
        load_health_config(write(tmp_path, {"events": {"login": []}}, "empty.json"))


def test_min_coverage_is_a_share(tmp_path: Path) -> None:
    assert C.bands.min_coverage == 0.3
    with pytest.raises(HealthConfigError, match=r"bands\.min_coverage"):
        load_health_config(write(tmp_path, {"bands": {"min_coverage": 1.5}}))
