"""Consent and opting out: a wallet opens only with recorded consent to a versioned text;
closing stops all processing; the remaining balance follows the city's published choice;
a retention policy erases everything as a command."""

from __future__ import annotations

import datetime as dt
import inspect
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregates.errors import InvalidInput, WalletClosed
from civfed.v1 import wallet_pb2
from services.city import CityApplication
from services.city_totals import city_totals
from services.cli import main
from services.demo.local_federation import LocalFederation
from services.federation.home import HomeRedemptions
from services.federation.vouchers import verify
from services.grpc.auth import bearer
from services.privacy.retention import finish_closing, run_retention
from services.privacy.sealing import REDACTED
from services.settings.cities import PACKAGED_CITIES
from services.unit_of_work import Job
from tests.e2e.flows import attest, open_wallet
from tests.rights.apps import city_app, opened

TRIP = {"mode": "bike", "distance_m": 60_000, "date": "2026-05-03"}  # 12 kg: no token yet


def test_wallet_opens_only_with_consent_to_a_known_versioned_text(vienna: CityApplication) -> None:
    for version, problem in (("", "current: wien-2026-01"), ("wien-2025-draft", "current: wien-2026-01")):
        before = vienna.recorder.max_notification_id()
        with pytest.raises(InvalidInput) as err:
            vienna.execute(vienna.open_wallet(f"o:{version}", "resident", version))
        assert err.value.field == "consent_version" and problem in err.value.problem
        assert vienna.recorder.max_notification_id() == before  # nothing stored
    wallet = opened(vienna)
    opened_event = next(iter(vienna.events.get(wallet)))
    assert type(opened_event).__qualname__ == "Wallet.Opened"
    assert opened_event.consent_version == "wien-2026-01"  # type: ignore[attr-defined]


def rich_wallet(app: CityApplication, home: HomeRedemptions) -> dict[str, Any]:
    """A wallet with a balance, a voucher, a redemption voucher and an open appeal."""
    wallet = opened(app, "rich")
    app.execute(app.record_activity("t", wallet, "trip", {**TRIP, "distance_m": 500_000}))  # 5 tokens
    shop = UUID(app.execute(app.register_merchant("shop", "Bakery", "food", True))["merchant_id"])
    prize = UUID(app.execute(app.offer_prize("prize", shop, "Bread", 1, 5))["prize_id"])
    voucher = UUID(app.execute(app.issue_voucher("v", wallet, 1))["voucher_id"])
    token = app.execute(home.issue("rv", wallet, 1))["token"]
    appeal = UUID(
        app.execute(app.file_appeal("f", wallet, "missing_award", "x", "missing", "holder"))["appeal_id"]
    )
    return {
        "wallet": wallet,
        "shop": shop,
        "prize": prize,
        "voucher": voucher,
        "token": token,
        "appeal": appeal,
    }


def closed_wallet_commands(app: CityApplication, home: HomeRedemptions, w: dict[str, Any]) -> dict[str, Job]:
    """Every command that acts on a wallet, as it would arrive after the wallet closed."""
    remedy = {"activity": "trip", "fields": TRIP}
    redemption_voucher = verify(w["token"], home.signing_key.public_key())
    return {
        "record_activity": app.record_activity("c1", w["wallet"], "trip", TRIP),
        "spend": app.spend("c2", w["wallet"], w["shop"], 1, "p"),
        "claim_prize": app.claim_prize("c3", w["wallet"], w["prize"]),
        "issue_voucher": app.issue_voucher("c4", w["wallet"], 1),
        "redeem_voucher": app.redeem_voucher("c5", w["voucher"], w["shop"]),
        "close_wallet": app.close_wallet("c6", w["wallet"]),
        "file_appeal": app.file_appeal("c7", w["wallet"], "award", "x", "why", "holder"),
        "decide_appeal": app.decide_appeal("c8", w["appeal"], True, "ok", "officer", remedy),
        "issue_redemption_voucher": home.issue("c9", w["wallet"], 1),
        "reserve": home.reserve("c10", "sint_niklaas", redemption_voucher),
    }


def wallet_commands() -> set[str]:
    """Names of the application's commands that take a wallet or act on one."""
    names = set()
    for name, fn in inspect.getmembers(CityApplication, inspect.isfunction):
        sig = inspect.signature(fn)
        if sig.return_annotation == "Job" and {"wallet_id", "voucher_id", "appeal_id"} & set(sig.parameters):
            names.add(name)
    return names


@pytest.mark.parametrize("final_spend_days", [0, 30])
def test_closing_stops_all_processing(tmp_path: Path, final_spend_days: int) -> None:
    app = city_app("vienna", tmp_path)
    app.city.config = app.city.config.model_copy(update={"final_spend_days": final_spend_days})
    home = HomeRedemptions(app, Ed25519PrivateKey.generate(), dt.timedelta(hours=1), dt.timedelta(minutes=5))
    w = rich_wallet(app, home)
    out = app.execute(app.close_wallet("close", w["wallet"], "moving away"))
    if final_spend_days:
        # Leaving with a balance: only final spending is processed until the window ends.
        assert out["closed"] is False and out["final_spend_until"]
        with pytest.raises(WalletClosed):
            app.execute(app.record_activity("late", w["wallet"], "trip", TRIP))
        app.execute(app.spend("final", w["wallet"], w["shop"], 1, "last loaf"))
        later = app.clock() + dt.timedelta(days=final_spend_days, seconds=1)
        app.clock = lambda: later  # type: ignore[method-assign]
        # 5 earned, 1 spent; the unredeemed voucher's hold is released and lapses with the rest.
        assert app.execute(finish_closing(app, "finish", w["wallet"]))["lapsed"] == 4
    wallet = app.wallet(w["wallet"])
    assert wallet.closed and wallet.balance == 0 and wallet.held == 0
    version = wallet.version

    commands = closed_wallet_commands(app, home, w)
    assert "record_activity" in wallet_commands(), "the builders are no longer found"
    assert wallet_commands() <= set(commands), "a wallet command is missing from this test"
    for name, cmd in commands.items():
        with pytest.raises(WalletClosed):
            app.execute(cmd)
        assert app.wallet(w["wallet"]).version == version, name  # not one event more
    assert app.appeal(w["appeal"]).status == "open"  # not processed either
    app.close()


def test_remaining_balance_lapses_by_a_published_event_not_a_penalty(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    app.city.config = app.city.config.model_copy(update={"final_spend_days": 0})
    wallet = opened(app)
    app.execute(app.record_activity("t", wallet, "trip", {**TRIP, "distance_m": 300_000}))
    app.execute(app.close_wallet("close", wallet, "moving away"))
    kinds = [type(e).__qualname__ for e in app.events.get(wallet)]
    assert kinds[-2:] == ["Wallet.Closed", "Wallet.Lapsed"]
    totals = city_totals(app, "vienna")
    assert (totals.issued, totals.lapsed, totals.outstanding) == (3, 3, 0)
    app.close()


def retention_cities(tmp_path: Path, pilot_ends: str, after_days: int) -> Path:
    """The packaged cities, with Vienna's retention policy moved to the given dates."""
    cities = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES, cities)
    toml = cities / "vienna" / "city.toml"
    text = toml.read_text()
    assert "pilot_ends = 2027-06-30" in text and "erase_after_days = 90" in text
    text = text.replace("pilot_ends = 2027-06-30", f"pilot_ends = {pilot_ends}")
    toml.write_text(text.replace("erase_after_days = 90", f"erase_after_days = {after_days}"))
    return cities


def test_retention_policy_runs_as_a_command_and_erases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cities = retention_cities(tmp_path, "2026-01-31", 90)
    env = {"CIVFED_CITIES_DIR": str(cities)}
    app = city_app("vienna", tmp_path / "data", env)
    wallets = [opened(app, f"w{i}") for i in range(3)]
    for i, w in enumerate(wallets):
        app.execute(
            app.record_activity(f"t{i}", w, "trip", {**TRIP, "distance_m": 100_000 * (i + 1)}, f"trip-{i}-x")
        )
    issued = city_totals(app, "vienna").issued
    app.clock = lambda: dt.datetime(2026, 4, 30, tzinfo=dt.UTC)  # type: ignore[method-assign]
    assert run_retention(app) == {"city": "vienna", "retention_due": False, "closed": 0, "erased": 0}
    app.close()

    monkeypatch.setenv("CIVFED_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CIVFED_CITIES_DIR", str(cities))
    assert main(["retention", "run", "--city", "vienna", "--json"]) == 0  # today is long after 1 May 2026
    assert '"erased": 3' in capsys.readouterr().out

    app = city_app("vienna", tmp_path / "data", env)
    assert all(app.wallet(w).erased and app.wallet(w).closed for w in wallets)
    assert app.keys is not None and all(app.keys.is_erased(w) for w in wallets)
    credited = [e for w in wallets for e in app.events.get(w) if type(e).__qualname__ == "Wallet.Credited"]
    assert {(e.activity_id, e.explanation) for e in credited} == {(REDACTED, REDACTED)}  # type: ignore[attr-defined]
    assert city_totals(app, "vienna").issued == issued
    assert main(["retention", "run", "--city", "vienna"]) == 0  # a second run has nothing left to do
    app.close()


def test_closing_over_grpc_tells_the_holder_the_final_spend_window(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    opened_ = open_wallet(v, "cw")
    trip = {"mode": "bike", "distance_m": "300000", "date": "2026-05-03"}
    attest(v, "cw:t", opened_.wallet_id, "trip", trip)
    holder = bearer(opened_.holder_token)
    closing = v.wallet.CloseWallet(
        wallet_pb2.CloseWalletRequest(idempotency_key="cw:c", wallet_id=opened_.wallet_id, reason="moving"),
        metadata=holder,
        timeout=5,
    )
    assert (closing.closed, closing.balance.units) == (False, 3)
    until = dt.datetime.fromisoformat(closing.final_spend_until)
    assert dt.timedelta(days=29) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(days=30)
    with pytest.raises(grpc.RpcError) as err:
        attest(v, "cw:t2", opened_.wallet_id, "trip", trip)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
