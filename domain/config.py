"""HealthConfig: every weight and threshold of the health, churn, Lean and expansion rules.

Weights and thresholds are configuration, not code. The single source of the
defaults is ``domain/health_config.json`` (shipped with the package);
``DEFAULT_CONFIG`` is that file, validated. A deployment overrides any part
of it with a JSON file (partial or full) named by the ``path`` argument of
``load_health_config`` or by the ``VIM_HEALTH_CONFIG`` environment variable;
the override is deep-merged over the defaults (objects merge key by key, any
other value, lists included, replaces the default; ``null`` deletes a key and
``"$replace": true`` in an object replaces that object wholesale, see
``deep_merge``).

``version`` is recorded on every health snapshot: bump it whenever a weight or
threshold changes so that old and new scores are never compared blindly.

TAM rule (technical health caps the commercial score): the TAM RAG is the
latest ``tam_rag`` (RED/AMBER/GREEN), or, when that is missing, derived from
``tam_score`` (< ``tam.red_below`` RED, < ``tam.amber_below`` AMBER, else
GREEN). TAM RED caps the score at ``bands.amber_min - tam.red_cap_offset``
(44 by default, so the band is RED); TAM AMBER caps it at
``bands.green_min - tam.amber_cap_offset`` (69, at best AMBER); GREEN does
nothing. A TAM measurement older than ``tam.stale_days`` is not applied.

Workflows must not call ``load_health_config`` (it reads files): load the
config in an activity or the CLI and pass the validated model along.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.facts import Windows

ENV_VAR = "VIM_HEALTH_CONFIG"
DEFAULT_CONFIG_PATH = Path(__file__).with_name("health_config.json")

# The eleven health signals, in the order they are scored and displayed.
SIGNALS: tuple[str, ...] = (
    "feature_adoption",
    "support_tickets",
    "last_interaction",
    "login_frequency",
    "usage_trend",
    "invoice_status",
    "stakeholder_engagement",
    "nps",
    "renewal_proximity",
    "seat_utilization",
    "escalations",
)

SIGNAL_LABELS: dict[str, str] = {
    "feature_adoption": "Feature adoption",
    "support_tickets": "Support tickets",
    "last_interaction": "Last interaction",
    "login_frequency": "Login frequency",
    "usage_trend": "Usage trend",
    "invoice_status": "Invoice status",
    "stakeholder_engagement": "Stakeholder engagement",
    "nps": "NPS",
    "renewal_proximity": "Renewal proximity",
    "seat_utilization": "Seat utilization",
    "escalations": "Escalations",
}

# Behavioral churn flags that carry points (see domain/churn.py).
BEHAVIORAL_FLAGS: tuple[str, ...] = (
    "usage_drop",
    "active_user_drop",
    "champion_left",
    "nps_detractor",
    "invoice_overdue",
    "escalations",
)


class HealthConfigError(ValueError):
    """A config file that cannot be read or does not validate; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------- bands/TAM


class BandConfig(_Strict):
    green_min: float = Field(ge=0, le=100)
    amber_min: float = Field(ge=0, le=100)
    # Below this share of the signal weight with data the band is UNSCORED (see health.py).
    min_coverage: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.amber_min < self.green_min:
            raise ValueError(
                f"amber_min ({self.amber_min}) must be below green_min ({self.green_min})"
            )
        return self


class TamConfig(_Strict):
    enabled: bool
    stale_days: int = Field(gt=0)
    red_below: int = Field(ge=0, le=100)  # TAM score below this is RED when rag is missing
    amber_below: int = Field(ge=0, le=100)
    red_cap_offset: float = Field(ge=0, le=100)  # RED caps at amber_min - offset
    amber_cap_offset: float = Field(ge=0, le=100)  # AMBER caps at green_min - offset

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.red_below > self.amber_below:
            raise ValueError("red_below must not exceed amber_below")
        return self


# ------------------------------------------------------------------ signal params


class SupportTicketsParams(_Strict):
    baseline_floor: float = Field(gt=0)  # tickets per window; avoids dividing by ~0
    zero_at_ratio: float = Field(gt=1)  # recent/baseline ratio at which volume scores 0
    sentiment_share: float = Field(ge=0, le=1)
    urgent_open_penalty: float = Field(ge=0)


class LastInteractionParams(_Strict):
    full_days: int = Field(ge=0)
    zero_days: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.full_days < self.zero_days:
            raise ValueError("full_days must be below zero_days")
        return self


class LoginFrequencyParams(_Strict):
    full_share: float = Field(gt=0, le=1)  # share of window days with a login that scores 100


class UsageTrendParams(_Strict):
    zero_at_change: float = Field(ge=-1, lt=0)  # relative change that scores 0
    flat_score: float = Field(ge=0, le=100)  # score of an unchanged usage level
    full_at_change: float = Field(gt=0)  # relative growth that scores 100


class InvoiceStatusParams(_Strict):
    first_overdue_score: float = Field(ge=0, le=100)  # one invoice, just overdue
    zero_days: int = Field(gt=0)  # days overdue at which the score reaches 0
    extra_invoice_penalty: float = Field(ge=0)  # per overdue invoice beyond the first


class StakeholderParams(_Strict):
    engaged_points: float = Field(ge=0)
    champion_points: float = Field(ge=0)
    sponsor_points: float = Field(ge=0)
    champion_left_penalty: float = Field(ge=0)

    @model_validator(mode="after")
    def _max_100(self) -> Self:
        total = self.engaged_points + self.champion_points + self.sponsor_points
        if abs(total - 100) > 1e-9:
            raise ValueError(
                f"engaged_points + champion_points + sponsor_points must be 100, got {total:g}"
            )
        return self


class NpsParams(_Strict):
    # (score 0..10, sub-score 0..100) points of a piecewise-linear curve.
    curve: list[tuple[float, float]] = Field(min_length=2)

    @field_validator("curve")
    @classmethod
    def _monotone(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        xs = [x for x, _ in v]
        ys = [y for _, y in v]
        if xs != sorted(xs) or len(set(xs)) != len(xs):
            raise ValueError("curve x values (NPS 0..10) must be strictly increasing")
        if ys != sorted(ys):
            raise ValueError("curve sub-scores must not decrease")
        if xs[0] > 0 or xs[-1] < 10:
            raise ValueError("curve must cover NPS 0 to 10")
        if not all(0 <= y <= 100 for y in ys):
            raise ValueError("curve sub-scores must be within 0..100")
        return v


class RenewalProximityParams(_Strict):
    full_days: int = Field(gt=0)  # days to renewal that score 100


class SeatUtilizationParams(_Strict):
    full_utilization: float = Field(gt=0, le=1)  # active/seats that scores 100


class EscalationsParams(_Strict):
    penalty_each: float = Field(gt=0)


class SignalParams(_Strict):
    support_tickets: SupportTicketsParams
    last_interaction: LastInteractionParams
    login_frequency: LoginFrequencyParams
    usage_trend: UsageTrendParams
    invoice_status: InvoiceStatusParams
    stakeholder_engagement: StakeholderParams
    nps: NpsParams
    renewal_proximity: RenewalProximityParams
    seat_utilization: SeatUtilizationParams
    escalations: EscalationsParams


class DriverConfig(_Strict):
    max_drivers: int = Field(ge=0, le=11)
    min_points: float = Field(ge=0)  # a signal must move the score at least this much


# ------------------------------------------------------------------------- churn


class ChurnConfig(_Strict):
    renewal_days: int = Field(ge=0)  # contract-proximity trigger window
    usage_drop_pct: float = Field(gt=0, le=1)
    active_user_drop_pct: float = Field(gt=0, le=1)
    min_prev_users: int = Field(ge=1)  # ignore user drops on tiny bases (2 -> 1)
    nps_detractor_max: int = Field(ge=0, le=10)
    overdue_days: int = Field(ge=0)
    escalation_count: int = Field(ge=1)
    flag_weights: dict[str, int]
    high_points: int = Field(ge=1)
    critical_points: int = Field(ge=1)

    @field_validator("flag_weights")
    @classmethod
    def _known_flags(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(BEHAVIORAL_FLAGS))
        if unknown:
            raise ValueError(
                f"unknown churn flag(s) {unknown}; known: {', '.join(BEHAVIORAL_FLAGS)}"
            )
        missing = [f for f in BEHAVIORAL_FLAGS if f not in v]
        if missing:
            raise ValueError(f"missing weight for churn flag(s) {missing}")
        negative = sorted(k for k, w in v.items() if w < 0)
        if negative:
            raise ValueError(f"churn flag weights must be >= 0: {negative}")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.high_points > self.critical_points:
            raise ValueError("high_points must not exceed critical_points")
        return self


# -------------------------------------------------------------------------- lean


class MudaConfig(_Strict):
    utilization_below: float = Field(gt=0, le=1)  # seat utilization below this is waste
    medium_below: float = Field(ge=0, le=1)
    high_below: float = Field(ge=0, le=1)
    redeploy_min_days: int = Field(ge=0)  # renewal this far away: re-deployment framing
    shelfware_exempt: list[str]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.high_below <= self.medium_below <= self.utilization_below:
            raise ValueError("need high_below <= medium_below <= utilization_below")
        return self


class MuraConfig(_Strict):
    min_weeks: int = Field(ge=2)
    cv_threshold: float = Field(gt=0)
    cv_medium: float = Field(gt=0)
    cv_high: float = Field(gt=0)
    max_gap_days: int = Field(gt=0)
    gap_medium: int = Field(gt=0)
    gap_high: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.cv_threshold <= self.cv_medium <= self.cv_high:
            raise ValueError("need cv_threshold <= cv_medium <= cv_high")
        if not self.max_gap_days <= self.gap_medium <= self.gap_high:
            raise ValueError("need max_gap_days <= gap_medium <= gap_high")
        return self


class MuriConfig(_Strict):
    spike_ratio: float = Field(gt=1)  # recent tickets / baseline that counts as a spike
    min_tickets: int = Field(ge=1)
    baseline_floor: float = Field(gt=0)
    renewal_window_days: int = Field(gt=0)  # renewal within this raises severity
    medium_at: float = Field(gt=0)  # renewal-weighted ratio thresholds
    high_at: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.medium_at <= self.high_at:
            raise ValueError("medium_at must not exceed high_at")
        return self


class LeanConfig(_Strict):
    muda: MudaConfig
    mura: MuraConfig
    muri: MuriConfig


# --------------------------------------------------------------------- expansion


class ExpansionConfig(_Strict):
    seat_utilization_min: float = Field(gt=0)  # active/seats in the last sustained_windows
    # activity windows that must all reach seat_utilization_min (2: this one and the one before)
    sustained_windows: int = Field(default=2, ge=1, le=2)
    seat_buffer_share: float = Field(ge=0, le=1)  # minimum extra seats as a share of seats
    module_min_usage: float = Field(gt=0)  # usage of an unlicensed module that counts
    limit_hits_min: int = Field(ge=1)
    limit_uplift_share: float = Field(ge=0, le=1)  # limit upgrade of a licensed module
    # The integration rule (heavy API use without the integrations module); null turns it
    # off, e.g. for a catalogue without these modules.
    api_module: str | None = None
    integrations_module: str | None = None
    api_heavy_usage: float = Field(gt=0)  # api module usage in the adoption window


# ------------------------------------------------------------------------ events

ANY_EVENT = "*"
LOGIN_EVENT_TYPES: tuple[str, ...] = ("login",)  # what the shipped config counts as a login


class EventsConfig(_Strict):
    """Which usage event types mean what. ``login``: the event types that count as a login
    for login frequency (``*`` = any event: a feed without a login event then measures
    days with any activity)."""

    login: list[str] = Field(min_length=1)

    @field_validator("login")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not t.strip()]
        if bad:
            raise ValueError("login event types must be non-empty strings")
        return sorted(set(v))


# --------------------------------------------------------------------- catalogue


class FeatureSpec(_Strict):
    event_type: str
    label: str
    benchmark: float = Field(gt=0, le=1)  # share of active users who use it


class ModuleSpec(_Strict):
    label: str
    price_per_seat: float = Field(ge=0)  # list price, dollars per seat per year
    features: list[FeatureSpec]


# ------------------------------------------------------------------- calibration


class BandChurnRate(_Strict):
    observations: int = Field(ge=0)
    churned: int = Field(ge=0)
    rate: float | None = Field(default=None, ge=0, le=1)  # None: no observation in the band


class CalibrationInfo(_Strict):
    """Where a calibrated config came from (``starter.py calibrate``), and what its bands meant.

    ``churn_rate_by_band[h][band]`` is the observed share of accounts in ``band`` that churned
    (the churn became known) within ``h`` days, measured on the validation dates: the
    calibrated probability a draft may quote ("1 in 6 accounts like this churned within 60 days").
    """

    based_on_version: str
    fit_from: date
    fit_to: date
    validate_from: date
    validate_to: date
    observed_until: date
    horizons: list[int] = Field(min_length=1)
    churn_rate_by_band: dict[str, dict[str, BandChurnRate]]


# ------------------------------------------------------------------------- root


class HealthConfig(_Strict):
    version: str = Field(min_length=1)
    windows: Windows
    weights: dict[str, float]
    bands: BandConfig
    tam: TamConfig
    signals: SignalParams
    drivers: DriverConfig
    churn: ChurnConfig
    lean: LeanConfig
    expansion: ExpansionConfig
    events: EventsConfig
    catalogue: dict[str, ModuleSpec]
    calibration: CalibrationInfo | None = None  # set by `starter.py calibrate`

    @field_validator("windows", mode="before")
    @classmethod
    def _windows_strict(cls, v: Any) -> Any:
        # Windows lives in facts.py and ignores unknown keys; a typo here must not pass.
        if isinstance(v, Mapping):
            unknown = sorted(set(v) - set(Windows.model_fields))
            if unknown:
                raise ValueError(f"unknown window(s) {unknown}")
            bad = sorted(k for k, d in v.items() if not isinstance(d, int) or d <= 0)
            if bad:
                raise ValueError(f"window lengths must be positive integers: {bad}")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {', '.join(SIGNALS)}")
        missing = [s for s in SIGNALS if s not in v]
        if missing:
            raise ValueError(f"missing weight for signal(s) {missing}")
        negative = [s for s in SIGNALS if v[s] < 0]
        if negative:
            raise ValueError(f"weights must be >= 0: {negative}")
        if sum(v.values()) <= 0:
            raise ValueError("weights must sum to more than 0")
        return {s: v[s] for s in SIGNALS}  # canonical order, whatever the file's order

    @field_validator("catalogue")
    @classmethod
    def _catalogue(cls, v: dict[str, ModuleSpec]) -> dict[str, ModuleSpec]:
        seen: set[str] = set()
        for module, spec in v.items():
            for f in spec.features:
                if not f.event_type.startswith(f"{module}."):
                    raise ValueError(
                        f"feature {f.event_type!r} must start with its module name '{module}.'"
                    )
                if f.event_type in seen:
                    raise ValueError(f"feature {f.event_type!r} is listed twice")
                seen.add(f.event_type)
        return v

    @model_validator(mode="after")
    def _expansion_modules_known(self) -> Self:
        for field in ("api_module", "integrations_module"):
            name = getattr(self.expansion, field)
            if name is not None and name not in self.catalogue:
                raise ValueError(f"expansion.{field} {name!r} is not a catalogue module")
        return self

    # ---- helpers used by the scoring modules ----------------------------------

    def module_price(self, module: str) -> float | None:
        spec = self.catalogue.get(module)
        return spec.price_per_seat if spec is not None else None

    def features(self) -> list[tuple[str, FeatureSpec]]:
        """(module, feature) pairs, modules sorted by name, features in catalogue order."""
        return [(m, f) for m in sorted(self.catalogue) for f in self.catalogue[m].features]

    def with_overrides(self, overrides: Mapping[str, Any]) -> HealthConfig:
        """A new validated config: ``overrides`` deep-merged over this one."""
        merged = deep_merge(self.model_dump(mode="json"), overrides)
        return _validate(merged, "overrides")


# ------------------------------------------------------------------------ loading


REPLACE = "$replace"  # in an override object: replace the base object instead of merging


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key (recursively); every other value replaces the base value.

    Two escapes, so an override can remove what the defaults ship: ``null`` deletes the
    key (``{"catalogue": {"automation": null}}`` drops one module), and an object with
    ``"$replace": true`` replaces the base object wholesale (``{"catalogue": {"$replace":
    true, "app": {...}}}`` is the whole catalogue).
    """
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and value.get(REPLACE) is True:
            out[key] = deep_merge({}, {k: v for k, v in value.items() if k != REPLACE})
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise HealthConfigError(f"health config file not found: {path}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HealthConfigError(
            f"health config {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError:
        raise HealthConfigError(f"health config {path} is nested too deeply") from None
    if not isinstance(data, dict):
        raise HealthConfigError(f"health config {path} must hold a JSON object")
    return data


def _validate(data: Mapping[str, Any], source: str) -> HealthConfig:
    try:
        return HealthConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise HealthConfigError(f"invalid health config ({source}): {problems}") from exc


def load_health_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> HealthConfig:
    """Defaults from ``domain/health_config.json``, deep-merged with an override file.

    The override is ``path`` when given, else the file named by ``env["VIM_HEALTH_CONFIG"]``
    (pass ``os.environ``), else none. Raises ``HealthConfigError`` naming the file and
    the bad field (e.g. ``weights: Value error, unknown signal(s) ['nsp']``).
    """
    data = _read_json(DEFAULT_CONFIG_PATH)
    source = str(DEFAULT_CONFIG_PATH)
    override = path if path is not None else (env or {}).get(ENV_VAR) or None
    if override is not None:
        override_path = Path(override)
        data = deep_merge(data, _read_json(override_path))
        source = str(override_path)
    return _validate(data, source)


DEFAULT_CONFIG: HealthConfig = _validate(_read_json(DEFAULT_CONFIG_PATH), str(DEFAULT_CONFIG_PATH))
