"""The finance report's partner positions in euros: each side at its own city's published
rate; a partner whose currency has no euro value (Zwolle's hours), or whose rate this node
does not know, is said to have none, and no euro figure is made up for it."""

from __future__ import annotations

from decimal import Decimal

from services.finance import NO_EURO_VALUE, NO_RATE_KNOWN, PartnerLine, Rate, euros, in_euros, published_rates
from services.settings.cities import load_city


def test_each_side_is_in_euros_at_its_own_citys_rate() -> None:
    rates = published_rates(load_city(key).config for key in ("sint_niklaas", "vienna", "zwolle"))
    assert rates["vienna"] == Rate(Decimal("0.01"), 0)
    assert rates["zwolle"] == Rate(None, 2)
    p = PartnerLine("vienna", cleared_owed_by_us=250, cleared_owed_by_partner=1234, open_owed_by_partner=7)
    in_euros(p, rates["sint_niklaas"], rates["vienna"])
    # 250 hundredths of a Sengzen at 0.50; 1,234 Vienna tokens at 0.01.
    assert (p.cleared_owed_by_us_eur, p.cleared_owed_by_partner_eur) == ("1.25", "12.34")
    assert (p.open_owed_by_us_eur, p.open_owed_by_partner_eur) == ("0.00", "0.07")
    assert (p.partner_euro_per_token, p.partner_euro_note) == ("0.01", "")


def test_a_partner_without_a_euro_value_is_said_so_and_given_no_euros() -> None:
    rates = published_rates(load_city(key).config for key in ("sint_niklaas", "zwolle"))
    p = PartnerLine("zwolle", cleared_owed_by_us=100, cleared_owed_by_partner=300, open_owed_by_partner=5)
    in_euros(p, rates["sint_niklaas"], rates["zwolle"])
    assert p.partner_euro_note == NO_EURO_VALUE and p.partner_euro_per_token == ""
    assert (p.cleared_owed_by_partner_eur, p.open_owed_by_partner_eur) == ("", "")
    assert p.cleared_owed_by_us_eur == "0.50"  # this city's own side still has its value
    unknown = PartnerLine("atlantis", cleared_owed_by_partner=9)
    in_euros(unknown, rates["sint_niklaas"], None)
    assert unknown.partner_euro_note == NO_RATE_KNOWN and unknown.cleared_owed_by_partner_eur == ""
    # Zwolle's own side, were it the reporting city, has no euros either.
    assert euros(100, rates["zwolle"].euro_per_token, 2) == ""


def test_the_csv_says_a_partner_has_no_euro_value_and_keeps_its_amounts_numbers() -> None:
    from civfed.v1 import funds_pb2
    from services.cli.finance import rows

    report = funds_pb2.FinanceReportResponse(
        city="sint_niklaas",
        period="2026-05",
        currency="Sengzen",
        decimals=2,
        euro_per_token="0.50",
        partners=[
            funds_pb2.FinancePartner(
                partner_city="zwolle", cleared_owed_by_partner=300, partner_euro_note=NO_EURO_VALUE
            ),
            funds_pb2.FinancePartner(
                partner_city="vienna",
                cleared_owed_by_partner=1234,
                partner_euro_per_token="0.01",
                cleared_owed_by_partner_eur="12.34",
            ),
        ],
    )
    found = {(subject, figure): (amount, eur) for _, _, subject, figure, amount, eur in rows(report)}
    assert found[("zwolle", "partner_has_no_euro_value")] == ("", "")
    assert found[("zwolle", "cleared_owed_by_partner_partner_units")] == ("300", "")
    assert found[("vienna", "partner_euro_per_token")] == ("0.01", "")
    assert found[("vienna", "cleared_owed_by_partner_partner_units")] == ("1234", "12.34")
    for amount, _ in found.values():
        assert amount == "" or Decimal(amount) >= 0  # every amount a number, or empty
