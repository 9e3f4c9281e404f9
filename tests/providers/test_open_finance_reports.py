"""Report invariants for any seed and customer: totals equal their parts and agree with the ledger."""
from datetime import date
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from sandbox.core.context import schemas
from sandbox.core.validation import schema_id
from sandbox.ledger import generate_ledger
from sandbox.providers.open_finance.data import TEST_PSU_IDS, apply_test_accounts, connection_status
from sandbox.providers.open_finance.reports import build_financial_report


def d(x) -> Decimal:
    return Decimal(str(x))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), customer=st.text(min_size=1, max_size=12),
       today=st.dates(date(2018, 1, 1), date(2032, 12, 31)))
def test_report_sums_hold_for_any_seed(seed, customer, today):
    ledger = generate_ledger(seed, customer, today, market="IL")
    report = build_financial_report([ledger], customer, today)
    assert not schemas().errors(schema_id("open_finance", "get_financial_report.response"),
                                {"status": "DONE", "financialReport": report})
    tio = report["totalIncomesOutcome"]
    assert d(tio["sumIncomePerMonth"]) - d(tio["sumExpansesPerMonth"]) == d(tio["sumNetIncomePerMonth"])
    loans = report["loans"]
    assert sum((d(l["balance"]) for l in loans if l["mainCategory"] == "MORTGAGE"), Decimal(0)) == \
        d(report["loansTotal"]["totalMortgageAmount"])
    assert sum((d(l["balance"]) for l in loans if l["mainCategory"] == "LOANS"), Decimal(0)) == \
        d(report["loansTotal"]["totalLoansAmount"])
    sas = report["savingsAndSecurities"]
    assert sum((d(s["amount"]) for s in report["savings"]), Decimal(0)) == d(sas["totalSavings"])
    assert sum((d(s["totalValue"]) for s in report["securities"]), Decimal(0)) == d(sas["totalSecuritiesValue"])
    # card rows: one per card per month, and per-category rows add up to them
    by_cat: dict = {}
    for row in report["creditCardOutcomesByCat"]:
        key = (row["accountNumber"], row["yearMonth"])
        by_cat[key] = by_cat.get(key, Decimal(0)) + d(row["sumExpanse"])
    cards = [a for a in ledger.accounts if a.kind == "credit_card"]
    assert len(report["creditCardOutcomes"]) == len(cards) * len(report["yearMonthBalance"])
    for row in report["creditCardOutcomes"]:
        assert by_cat.get((row["accountNumber"], row["yearMonth"]), Decimal(0)) == d(row["sumExpanse"])
    # balances follow transactions: the newest month's closing balance is today's checking balance (in ILS: a
    # foreign-currency checking account is listed in checkingAccounts only, open_finance.md s.5 "amounts are ILS")
    checking = [a for a in ledger.accounts if a.kind == "checking" and a.currency == "ILS"]
    assert d(report["yearMonthBalance"][0]["balance"]) == sum((a.balance for a in checking), Decimal(0))
    assert d(report["balancesPerDays"][-1]["balance"]) == sum((a.balance for a in checking), Decimal(0))
    assert [r["yearMonth"] for r in report["yearMonthBalance"]] == sorted(
        (r["yearMonth"] for r in report["yearMonthBalance"]), reverse=True)
    assert report["currentDate"] == today.isoformat()


def test_report_is_deterministic_for_a_seed():
    today = date(2025, 4, 23)
    a = build_financial_report([generate_ledger(3, "c", today)], "c", today)
    b = build_financial_report([generate_ledger(3, "c", today)], "c", today)
    assert a == b
    assert a != build_financial_report([generate_ledger(4, "c", today)], "c", today)


def test_published_test_psu_ids_get_their_documented_accounts():
    today = date(2025, 4, 23)
    for psu, (bbans, status) in TEST_PSU_IDS.items():
        if not bbans:
            assert connection_status(psu) == status
            continue
        assert connection_status(psu) == "COMPLETED" and connection_status(psu, refresh_data=True) == "ACTIVE"
        ledger = apply_test_accounts(generate_ledger(1, psu, today), psu)
        numbers = [a.number for a in ledger.accounts if a.kind != "credit_card"]
        assert numbers[: len(set(bbans))] == list(dict.fromkeys(bbans))[: len(numbers)]
        checking = next(a for a in ledger.accounts if a.kind == "checking")
        assert checking.number == bbans[0]
        from sandbox.ledger.iban import is_valid_iban, parse_il_iban
        bank, branch, number = parse_il_iban(checking.iban)
        assert is_valid_iban(checking.iban) and f"{bank:02d}-{branch:03d}-{number}" == bbans[0]
