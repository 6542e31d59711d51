"""Settings from the environment, and city files validated at start-up."""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from aggregates.depreciation import period_days
from aggregates.limits import stored
from services.settings.errors import ConfigError, describe

PACKAGED_CITIES = Path(__file__).resolve().parents[2] / "cities"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "civfed"


class Settings(BaseSettings):
    """Environment settings. Names match eventsourcing's own variables."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    CIVFED_DATA_DIR: Path = Field(default_factory=default_data_dir)
    CIVFED_CITIES_DIR: Path = PACKAGED_CITIES
    PERSISTENCE_MODULE: Literal["eventsourcing.sqlite", "eventsourcing.postgres"] = "eventsourcing.sqlite"
    POSTGRES_DBNAME: str = ""
    POSTGRES_HOST: str = ""
    POSTGRES_PORT: int = 5432
    POSTGRES_USER: str = ""
    POSTGRES_PASSWORD: str = ""
    POSTGRES_SCHEMA: str = ""
    # The key-store key (services/privacy/keystore_key.py). Required on PostgreSQL by the roles
    # that open a city's store; the embedded SQLite default makes one in the data dir.
    CIVFED_KEYSTORE_KEY_FILE: Path | None = None
    # The key store's own database (services/privacy/locations.py), backed up on its own
    # schedule; empty: beside the event store. And the erasure journal's, apart from both.
    CIVFED_KEYSTORE_URL: str = ""
    CIVFED_ERASURE_JOURNAL_URL: str = ""
    # What a node keeps in memory, whatever the number of wallets: the most recently used
    # aggregates (wallets, shops, keyrings; eventsourcing's repository cache), and the most
    # recently used owners' keys and aliases (services/privacy/keystore.py). Everything
    # else is read from the store by id when asked for.
    CIVFED_AGGREGATE_CACHE_SIZE: int = Field(default=20_000, ge=1)
    CIVFED_KEY_CACHE_SIZE: int = Field(default=50_000, ge=1)
    # A wallet's state is snapshotted every this many of its events, so reading a wallet
    # that is not cached replays at most this many events, however long it has lived; 0: none.
    CIVFED_SNAPSHOT_INTERVAL: int = Field(default=100, ge=0)

    @field_validator("CIVFED_KEYSTORE_URL", "CIVFED_ERASURE_JOURNAL_URL")
    @classmethod
    def _a_location(cls, url: str, info: Any) -> str:
        from services.privacy.locations import parse_location

        if url:
            try:
                parse_location(url, info.field_name)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return url

    @field_validator("CIVFED_KEYSTORE_KEY_FILE")
    @classmethod
    def _key_file_holds_a_key(cls, path: Path | None) -> Path | None:
        from services.privacy.keystore_key import KeyStoreKeyError, read_kek

        if path is not None:
            try:
                read_kek(path)
            except KeyStoreKeyError as exc:
                raise ValueError(exc.detail) from None
        return path

    @model_validator(mode="after")
    def _postgres_complete(self) -> Settings:
        if self.PERSISTENCE_MODULE == "eventsourcing.postgres":
            for name in ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER"):
                if not getattr(self, name):
                    raise ValueError(f"{name} must be set when PERSISTENCE_MODULE is eventsourcing.postgres")
        return self

    def eventsourcing_env(self, city: str) -> dict[str, str]:
        env = {
            "PERSISTENCE_MODULE": self.PERSISTENCE_MODULE,
            "AGGREGATE_CACHE_MAXSIZE": str(self.CIVFED_AGGREGATE_CACHE_SIZE),
            "CIVFED_KEY_CACHE_SIZE": str(self.CIVFED_KEY_CACHE_SIZE),
            "CIVFED_SNAPSHOT_INTERVAL": str(self.CIVFED_SNAPSHOT_INTERVAL),
        }
        if self.PERSISTENCE_MODULE == "eventsourcing.sqlite":
            _make_data_dir(self.CIVFED_DATA_DIR)
            env["SQLITE_DBNAME"] = str(self.CIVFED_DATA_DIR / f"{city}.sqlite")
            env["SQLITE_LOCK_TIMEOUT"] = "30"
        else:
            for name in ("DBNAME", "HOST", "PORT", "USER", "PASSWORD", "SCHEMA"):
                env[f"POSTGRES_{name}"] = str(getattr(self, f"POSTGRES_{name}"))
        if self.CIVFED_KEYSTORE_KEY_FILE is not None:
            env["CIVFED_KEYSTORE_KEY_FILE"] = str(self.CIVFED_KEYSTORE_KEY_FILE)
        for name in ("CIVFED_KEYSTORE_URL", "CIVFED_ERASURE_JOURNAL_URL"):
            if getattr(self, name):
                env[name] = getattr(self, name)
        return env


def _make_data_dir(path: Path) -> None:
    """The SQLite stores' folder, made if missing; a file in the way names the setting."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"CIVFED_DATA_DIR: {path} is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"CIVFED_DATA_DIR: cannot create {path} ({exc.strerror})") from None


def cli_environment(data_dir: str | None) -> dict[str, str]:
    """The process environment, with a command line's --data-dir in place of CIVFED_DATA_DIR."""
    env = dict(os.environ)
    if data_dir:
        env["CIVFED_DATA_DIR"] = str(Path(data_dir).expanduser())
    return env


def load_settings(env: dict[str, str] | None = None) -> Settings:
    try:
        if env is None:
            return Settings()
        return Settings.model_validate({k: v for k, v in env.items() if k in Settings.model_fields})
    except ValidationError as exc:
        raise ConfigError(describe(exc, "environment")) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Depreciation(_Strict):
    """Published in advance: every minted lot falls linearly to zero over this period."""

    method: Literal["linear"] = "linear"
    basis: Literal["years", "life_expectancy"] = "years"
    years: int = Field(default=7, gt=0, le=120)

    @property
    def days(self) -> int:
        return period_days(self.years)


class Currency(_Strict):
    name: str
    decimals: int = Field(default=0, ge=0, le=4)
    local_only: bool = False
    basic_economy_only: bool = False
    depreciation: Depreciation | None = None


class AcceptedToken(_Strict):
    """Terms on which this city's shops take one partner's tokens (home units in)."""

    rate_numerator: int = Field(gt=0)
    rate_denominator: int = Field(gt=0)
    per_redemption_cap: int = Field(gt=0)
    daily_cap: int = Field(gt=0)
    # Clearing: the most of the partner's tokens, taken here and not yet cleared, the
    # partner may owe this city (none: no limit). A redemption beyond it is refused.
    exposure_limit: int | None = Field(default=None, gt=0)


class FederationTerms(_Strict):
    accepts: dict[str, AcceptedToken] = {}
    redeemable_at: list[str] = []


class Retention(_Strict):
    """Erase every wallet `erase_after_days` after the pilot ends."""

    pilot_ends: dt.date
    erase_after_days: int = Field(ge=0)


class WorkCategorySpec(_Strict):
    code: str
    title: str
    sector: str
    decision_ref: str


class TaxTerms(_Strict):
    """Municipal tax paid in tokens: the format of the city's assessment references (a
    regular expression the whole reference must match) and whether one assessment may be
    paid in several instalments (otherwise each reference is paid once)."""

    assessment_ref_pattern: str = Field(default=r"[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}", min_length=1)
    instalments: bool = False

    @field_validator("assessment_ref_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return value


class WorkflowTerms(_Strict):
    """A workflow city: the council's work catalogue and the activity its time rule rewards."""

    activity: str = "approved_work"
    categories: list[WorkCategorySpec] = Field(min_length=1)
    tax: TaxTerms = Field(default_factory=lambda: TaxTerms())


class ClaimTerms(_Strict):
    """Signed claims from registered sources (services/claims.py), and the desk path."""

    # A claim dated further back than this many days is refused as stale.
    max_age_days: int = Field(default=30, ge=0, le=366)
    # The activity kinds staff may record at a desk (RecordActivity); every other kind
    # reaches the ledger only as a claim signed by a registered source. Absent: every kind.
    desk_activities: list[str] | None = None


class DisclosureTerms(_Strict):
    """How the city's published figures are protected (projections/disclosure.py,
    docs/RIGHTS.md section 8): the privacy budget per closed period, k, and the most one
    person adds to one period's figures of each kind (the sensitivity of the noise).
    Amounts are in the currency's smallest unit."""

    epsilon_per_day: float = Field(default=1.0, gt=0, le=10)
    epsilon_per_week: float = Field(default=1.0, gt=0, le=10)
    epsilon_per_month: float = Field(default=1.0, gt=0, le=10)
    k: int = Field(default=10, ge=10, le=1000)
    # Hours after a period ends before it is published: events still in flight arrive first.
    grace_hours: int = Field(default=1, ge=0, le=168)
    max_award_per_day: int = Field(default=100, gt=0)
    max_spend_per_day: int = Field(default=100, gt=0)
    max_redemptions_per_day: int = Field(default=2, gt=0)  # vouchers or prizes
    # Redemptions at partner cities' shops in one week; each is capped by the partner's
    # per-redemption cap, so the weekly bound is this count times the largest such cap.
    max_redemptions_per_week: int = Field(default=2, gt=0)
    max_appeals_per_week: int = Field(default=2, gt=0)
    # A longer wait counts as this many hours in the published sum of waits.
    appeal_wait_cap_hours: int = Field(default=24 * 30, gt=0)
    max_minted_per_month: int = Field(default=10_000, gt=0)
    max_spent_per_month: int = Field(default=10_000, gt=0)
    max_holding: int = Field(default=50_000, gt=0)


# A merchant category: a short lowercase code, published on the public stream, and the
# name shown for it. Only the codes a city declares are accepted at registration.
CategoryCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
CategoryName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


# An action or event kind: a short lowercase code and its purpose in plain words.
KindCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Purpose = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Vocabulary(_Strict):
    """What the city rewards: every action and event kind its rules may name, with its purpose
    (aggregates/vocabulary.py). Without it, no rule names a declared kind, and none loads."""

    actions: dict[KindCode, Purpose] = {}
    events: dict[KindCode, Purpose] = {}


# -- shop payouts (aggregates/payout.py) ------------------------------------------
class PayoutTerms(_Strict):
    """The euro value of the city's token and the city's own account its payouts are made
    from; or, with `none`, why the city makes no payouts (its tokens have no euro value)."""

    none: str | None = Field(default=None, min_length=1, max_length=300)
    # Euro cents per smallest unit of the currency, exact: "1/2" or "3".
    euro_cents_per_token_unit: str | None = None
    period: Literal["weekly", "monthly"] = "weekly"
    debtor_name: str | None = Field(default=None, min_length=1, max_length=70)
    debtor_iban: str | None = None
    debtor_bic: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> PayoutTerms:
        from schwifty import BIC, IBAN
        from schwifty.exceptions import SchwiftyException

        from aggregates.errors import InvalidInput
        from aggregates.payout import parse_rate

        if self.none is not None:
            if self.euro_cents_per_token_unit or self.debtor_iban:
                raise ValueError("a city with no payouts (none = ...) publishes no rate and no account")
            return self
        if not (self.euro_cents_per_token_unit and self.debtor_name and self.debtor_iban):
            raise ValueError(
                "give euro_cents_per_token_unit, debtor_name and debtor_iban, or none = the reason"
            )
        try:
            parse_rate(self.euro_cents_per_token_unit)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        try:
            IBAN(self.debtor_iban)
            if self.debtor_bic:
                BIC(self.debtor_bic)
        except (SchwiftyException, ValueError):
            raise ValueError("debtor_iban or debtor_bic: not a valid IBAN or BIC") from None
        return self


FundCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class FundSpec(_Strict):
    """A fund behind a city's awards: who pays, how much per period, for which rules.

    The budget is given in the currency's smallest unit (`budget`), or in euros at the
    city's published rate (`budget_eur`), or both, which must then agree."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    funder: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    budget: int | None = Field(default=None, ge=0)
    budget_eur: Decimal | None = Field(default=None, ge=0)
    period: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    rules: list[str] = []

    def budget_units(self, euro_per_token: Decimal | None, decimals: int, fund_id: str = "") -> int:
        """The budget in the currency's smallest unit."""
        by_rate: int | None = None
        if self.budget_eur is not None:
            if euro_per_token is None:
                raise ValueError(f"fund {fund_id!r}: budget_eur needs the city's euro_per_token")
            by_rate = int(self.budget_eur / euro_per_token * 10**decimals)
        if self.budget is None and by_rate is None:
            raise ValueError(f"fund {fund_id!r}: give a budget (smallest units) or budget_eur")
        if self.budget is not None and by_rate is not None and self.budget != by_rate:
            raise ValueError(
                f"fund {fund_id!r}: budget {self.budget} and budget_eur {self.budget_eur}"
                f" ({by_rate} at the published rate) disagree"
            )
        return self.budget if self.budget is not None else int(by_rate or 0)


class CityConfig(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    # The English name; `local_name` is the one shown in the city's own language.
    name: str
    local_name: str | None = None
    # The city's language and formats as a BCP 47 tag (de-AT, it-IT, nl-BE, nl-NL).
    locale: str = "en"
    currency: Currency

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, tag: str) -> str:
        from services.i18n import parse_locale

        parse_locale(tag)
        return tag

    participant_kinds: list[Literal["resident", "tourist", "business"]] = Field(min_length=1)
    consent_versions: list[str] = Field(min_length=1)
    voucher_ttl_hours: int = Field(default=72, gt=0)
    tourist_max_days: int = Field(default=90, gt=0)
    # Staff decide an appeal within this many days of its filing.
    appeal_decision_days: int = Field(default=30, gt=0)
    # After a holder opts out, the remaining balance can be spent for this many
    # days; then the wallet closes and what is left lapses (0: close at once).
    final_spend_days: int = Field(default=30, ge=0)
    retention: Retention | None = None
    # A partner prize claimed is held this many hours for its hand-over; then it lapses.
    prize_claim_hours: int = Field(default=72, gt=0)
    # A tourist wallet, once its validity has ended and its final spend window has closed
    # it, is erased by the retention run this many days later.
    tourist_erase_after_days: int = Field(default=30, ge=0)
    federation: FederationTerms = FederationTerms()
    workflow: WorkflowTerms | None = None
    # The closed list of merchant categories: code -> display name. Without the
    # table a city declares none, and every merchant registration is refused.
    merchant_categories: dict[CategoryCode, CategoryName] = {}
    vocabulary: Vocabulary = Vocabulary()
    claims: ClaimTerms = ClaimTerms()
    disclosure: DisclosureTerms = DisclosureTerms()
    # Shop payouts: the token's euro value and the city's account, or none.
    payouts: PayoutTerms | None = None

    # -- funds and budgets (services/funds.py) ----------------------------------------------
    # The euro value of one whole token, as the city publishes it; None for a currency with
    # no euro value (Zwolle's hours). Funds' budgets and reports use it.
    euro_per_token: Decimal | None = Field(default=None, gt=0)
    # Who pays for the awards: each fund names the rules that draw on it.
    funds: dict[FundCode, FundSpec] = {}

    @model_validator(mode="after")
    def _funds_priced(self) -> CityConfig:
        seen: dict[str, str] = {}
        for fund_id, fund in self.funds.items():
            fund.budget_units(self.euro_per_token, self.currency.decimals, fund_id)
            for rule_id in fund.rules:
                if rule_id in seen:
                    raise ValueError(
                        f"rule {rule_id!r} draws on two funds: {seen[rule_id]!r} and {fund_id!r}"
                    )
                seen[rule_id] = fund_id
        return self

    @model_validator(mode="after")
    def _one_euro_value(self) -> CityConfig:
        """The funds' euro value of a token and the shops' payout rate are one published
        figure: a city may not pay its shops at a rate its finance reports do not use."""
        rate = self.payouts.euro_cents_per_token_unit if self.payouts else None
        if rate and self.euro_per_token is not None:
            from fractions import Fraction

            per_unit = Fraction(self.euro_per_token) * 100 / 10**self.currency.decimals
            if Fraction(rate.strip()) != per_unit:
                raise ValueError(
                    f"[payouts] euro_cents_per_token_unit {rate} disagrees with euro_per_token"
                    f" {self.euro_per_token} ({per_unit} cents per smallest unit)"
                )
        return self

    def fund_of(self, rule_id: str) -> str | None:
        """The fund a rule draws on; None in a city that declares no funds, or for a rule
        no fund names (refused at load for the rules in the file)."""
        for fund_id, fund in self.funds.items():
            if rule_id in fund.rules:
                return fund_id
        return None


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    kind: str
    activity: str
    params: dict[str, Any]
    conditions: dict[str, Any] = {}
    published_by: str
    reason: str
    # A change to this rule in the file is proposed to take effect from this date (the
    # activity's date); without it, from the day a council approver approves it.
    effective_from: dt.date | None = None

    @field_validator("conditions")
    @classmethod
    def _dates_as_text(cls, conditions: dict[str, Any]) -> dict[str, Any]:
        # TOML dates (valid_from, valid_until) are stored in events as ISO text.
        return stored(conditions)


class RulebookFile(_Strict):
    rules: list[RuleSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_rule_per_id_and_activity(self) -> RulebookFile:
        # A repeated id would be re-versioned on every start; a second rule for one
        # activity would silently never apply.
        for name in ("id", "activity"):
            values = [getattr(rule, name) for rule in self.rules]
            repeated = next((v for v in values if values.count(v) > 1), None)
            if repeated is not None:
                raise ValueError(f"{name} {repeated!r} is used by more than one rule")
        return self


class City(BaseModel):
    config: CityConfig
    rules: list[RuleSpec]


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"missing file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_city(key: str, cities_dir: Path = PACKAGED_CITIES) -> City:
    folder = cities_dir / key
    try:
        config = CityConfig.model_validate(_read(folder / "city.toml"))
        rulebook = RulebookFile.model_validate(_read(folder / "rulebook.toml"))
    except ValidationError as exc:
        raise ConfigError(describe(exc, f"city files in {folder}")) from None
    if config.key != key:
        raise ConfigError(f"{folder / 'city.toml'}: key {config.key!r} does not match folder {key!r}")
    return City(config=config, rules=rulebook.rules)


def check_rule_funds(city: City) -> None:
    """In a city that declares funds, every rule in the file draws on exactly one (checked
    after the rules themselves: services/rule_changes.py). A fund may still name a rule the
    file no longer has: its retirement is only proposed until approved, and it awards till then."""
    config = city.config
    if not config.funds:
        return
    for rule in city.rules:
        if config.fund_of(rule.id) is None:
            raise ConfigError(
                f"{config.key}: rule {rule.id!r} draws on no fund;"
                " in a city that declares funds every rule names exactly one"
            )


def city_keys(cities_dir: Path = PACKAGED_CITIES) -> list[str]:
    return sorted(p.parent.name for p in cities_dir.glob("*/city.toml"))
