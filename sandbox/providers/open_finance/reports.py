"""The ``financialReport`` object (open_finance.md section 5), computed from the user's ledgers.

Every figure is derived from the same transactions the data API serves, with Decimal arithmetic, so the report's
totals equal their parts: net = income - expenses, loansTotal = sum(loans[].balance) by category,
totalSavings = sum(savings[].amount), totalSecuritiesValue = sum(securities[].totalValue), and per card and month
sum(creditCardOutcomesByCat) = creditCardOutcomes. Months, monthly income/expense and daily balances are the
shared ledger analytics (sandbox/ledger/analytics.py).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from ...ledger.analytics import (
    Booking,
    account_bookings,
    balance_history,
    kind_of,
    month_key,
    month_label,
    monthly_totals,
)
from ...ledger.models import Ledger
from .data import CATEGORIES, REGULAR_INCOME, provider_id, split_bban

CENT = Decimal("0.01")
# Internal moves between the user's own accounts are neither income nor expense (savings are reported apart).
NOT_EXPENSE = {"savings_transfer", "securities_purchase"}


def _cents(value: Decimal) -> Decimal:
    """``value`` rounded to cents, with the precision it needs: a ledger generated centuries ahead grows its
    amounts past the default 28 digits, where a plain quantize raises InvalidOperation."""
    with localcontext() as ctx:
        ctx.prec = max(28, value.adjusted() + 4)
        return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> float | int:
    """Render Decimal money as a JSON number (integers stay integers, as in the guide's examples)."""
    q = _cents(value)
    return int(q) if q == q.to_integral_value() else float(q)


def _ym(d: date) -> str:
    return d.strftime("%Y-%m")


# The report covers at most this many months up to the current one. The guide publishes no window; without one a
# clock moved centuries ahead made one row per card per month for every month in between (inferred bound).
MAX_REPORT_MONTHS = 120


def _months(ledgers: list[Ledger], today: date) -> list[str]:
    """The report's months, newest first: from the first booking month (at most MAX_REPORT_MONTHS back) to the
    current month. None at all when every booking is after ``today`` (the clock moved back): the report is built from
    the data that exists when the job is created (open_finance.md s.5), and none existed yet."""
    starts = [t.booking_date for lg in ledgers for a in lg.accounts for t in a.transactions]
    first = month_key(min(starts) if starts else today)
    index = today.year * 12 + today.month - 1          # counted on (year, month) keys: no date past year 9999
    count = min(index - (first[0] * 12 + first[1] - 1) + 1, MAX_REPORT_MONTHS)
    return [_label(index - i) for i in range(max(count, 0))]


def _label(index: int) -> str:
    year, month = divmod(index, 12)
    return month_label((year, month + 1))


def _booking_months(bookings: list[Booking]) -> list[tuple[int, int]]:
    """Every month from the first to the last booking as (year, month) keys, built without dates, so bookings
    in December 9999 need no January 10000."""
    if not bookings:
        return []
    first, last = min(month_key(b.day) for b in bookings), max(month_key(b.day) for b in bookings)
    return [(i // 12, i % 12 + 1) for i in range(first[0] * 12 + first[1] - 1, last[0] * 12 + last[1])]


def _average(total: Decimal, n: Decimal) -> Decimal:
    """``total / n`` months; 0 over no complete month (a report that covers no month averages nothing)."""
    return total / n if n else Decimal(0)


def _is_income(b: Booking) -> bool:
    return b.amount > 0 and kind_of(b.category) == "income"


def _is_expense(b: Booking) -> bool:
    return b.amount < 0 and b.category not in NOT_EXPENSE


def build_financial_report(ledgers: list[Ledger], customer_id: str, today: date) -> dict:
    """The financialReport for ``customer_id`` as of ``today`` (the sandbox clock's date at job creation)."""
    accounts = [a for lg in ledgers for a in lg.accounts]
    checking = [a for a in accounts if a.kind == "checking"]
    cards = [a for a in accounts if a.kind == "credit_card"]
    months = _months(ledgers, today)
    full_months = [m for m in months if m != _ym(today)] or months  # averages use complete months only
    main = checking[0] if checking else (accounts[0] if accounts else None)
    owner = ledgers[0].owner_name if ledgers else ""

    # --- checking: monthly income / expense / closing balance -------------------------------------------------
    # every booking month counts (not only the report's): a source seen only later is still listed, as before
    bookings = account_bookings(checking)
    totals = monthly_totals(bookings, _booking_months(bookings), is_income=_is_income, is_expense=_is_expense)
    income = defaultdict(Decimal, {month_label(m): v for m, v in totals.income.items()})
    expense = defaultdict(Decimal, {month_label(m): v for m, v in totals.expense.items()})
    regular = defaultdict(lambda: defaultdict(Decimal))
    for category, by_month in totals.income_by_category.items():
        if category in REGULAR_INCOME:
            for m, amount in by_month.items():
                regular[REGULAR_INCOME[category]][month_label(m)] += amount
    fees = defaultdict(lambda: defaultdict(Decimal))
    closing: dict[str, Decimal] = {}
    for account in checking:
        balance_by_month = {}
        for t in account.transactions:
            month = _ym(t.booking_date)
            if t.category == "fees":
                fees[account.id][month] -= t.amount
            balance_by_month[month] = t.balance_after
        running = account.opening_balance
        for month in reversed(months):  # carry the closing balance through months without bookings
            running = balance_by_month.get(month, running)
            closing[month] = closing.get(month, Decimal(0)) + running

    year_month_balance = [{"yearMonth": m, "sumIncome": money(income[m]), "sumExpense": money(expense[m]),
                           "balance": money(closing.get(m, Decimal(0)))} for m in months]

    n = Decimal(len(full_months))
    avg_income = _cents(_average(sum((income[m] for m in full_months), Decimal(0)), n))
    avg_expense = _cents(_average(sum((expense[m] for m in full_months), Decimal(0)), n))
    total_incomes_outcome = {
        "customerId": customer_id, "date": today.replace(day=1).isoformat(),
        "sumIncomePerMonth": money(avg_income), "sumExpansesPerMonth": money(avg_expense),  # sic, per the guide
        "sumNetIncomePerMonth": money(avg_income - avg_expense),
        "regularIncomeSources": [{"classificationSource": source,
                                  "amount": money(_average(sum((by_month[m] for m in full_months), Decimal(0)), n))}
                                 for source, by_month in sorted(regular.items())],
    }

    # --- daily balances of the last 30 days (all checking accounts together) ----------------------------------
    daily: dict[date, Decimal] = defaultdict(Decimal)
    for account in checking:  # end-of-day balances rolled back from the current balance (ledger: balance = sum)
        for day, balance in balance_history(account.balance, account.transactions, today - timedelta(days=29), today):
            daily[day] += balance
    balances_per_days = [{"date": (today - timedelta(days=offset)).isoformat(),
                          "balance": money(daily[today - timedelta(days=offset)])} for offset in range(29, -1, -1)]

    # --- cards ------------------------------------------------------------------------------------------------
    card_outcomes, card_by_cat, card_fees = [], [], []
    for card in cards:
        per_month, per_cat, fee = defaultdict(Decimal), defaultdict(Decimal), defaultdict(Decimal)
        for t in card.transactions:
            if t.amount < 0:
                month = _ym(t.booking_date)
                per_month[month] -= t.amount
                per_cat[(month, CATEGORIES[t.category][0])] -= t.amount
                if t.category == "card_fee":
                    fee[month] -= t.amount
        pid = provider_id(card)
        number = card.number[-4:]
        for month in months:  # one row per card per month, zero rows included
            card_outcomes.append({"accountNumber": card.number, "parsedAccountNumber": number, "yearMonth": month,
                                  "customerId": customer_id, "providerId": pid, "sumExpanse": money(per_month[month])})
        for (month, category), amount in sorted(per_cat.items(), key=lambda kv: (kv[0][0], kv[0][1]), reverse=True):
            card_by_cat.append({"accountNumber": card.number, "providerId": pid, "yearMonth": month,
                                "category": category, "sumExpanse": money(amount)})
        fee_total = sum((fee[m] for m in full_months), Decimal(0))
        card_fees.append({"avgCardFee": money(_average(fee_total, n)) if fee_total else None, "accountNumber": card.number,
                          "customerId": customer_id, "providerId": pid})

    monthly_fees = [{"providerId": provider_id(a), "accountNumber": a.number,
                     "avgFee": money(_average(sum((fees[a.id][m] for m in full_months), Decimal(0)), n))}
                    for a in checking]

    # --- savings, securities, loans ----------------------------------------------------------------------------
    savings = []
    for a in (a for a in accounts if a.kind == "savings"):
        savings.append({"accountNumber": a.number, "parsedAccountNumber": split_bban(a.number)[2],
                        "providerId": provider_id(a), "amount": money(a.balance),
                        "savingsTransactions": [{"date": t.booking_date.isoformat(), "amount": money(t.amount),
                                                 "description": t.description} for t in a.transactions]})
    securities = []
    for a in (a for a in accounts if a.kind == "securities"):
        for h in a.holdings:
            securities.append({"accountNumber": a.number, "parsedAccountNumber": split_bban(a.number)[2],
                               "providerId": provider_id(a), "name": h.name, "unitsNumber": money(h.units),
                               "averageBuyingPrice": {"amount": money(h.average_price), "currency": h.currency},
                               "normalisedPrice": money(h.price), "totalValue": money(h.value)})
    loans = []
    for a in (a for a in accounts if a.kind in ("loan", "mortgage")):
        category = "MORTGAGE" if a.kind == "mortgage" else "LOANS"
        loans.append({"accountNumber": a.number, "parsedAccountNumber": split_bban(a.number)[2],
                      "providerId": provider_id(a), "mainCategory": category, "balance": money(-a.balance),
                      "transactions": [{"chargedAmount": money(t.amount), "mainCategory": category}
                                       for t in a.transactions]})
    foreign = defaultdict(Decimal)
    for a in accounts:
        if a.currency != "ILS" and a.kind in ("checking", "savings"):
            foreign[a.currency] += a.balance

    def total(rows, key, where=lambda r: True):
        return money(sum((Decimal(str(r[key])) for r in rows if where(r)), Decimal(0)))

    return {
        "customerId": customer_id,
        "ownerName": owner,
        "parsedAccountNumber": split_bban(main.number)[2] if main else "",
        "providerId": provider_id(main) if main else "",
        "currentDate": today.isoformat(),
        "checkingAccountsILS": [_checking_row(a, customer_id) for a in checking if a.currency == "ILS"],
        "checkingAccounts": [_checking_row(a, customer_id) for a in checking],
        "yearMonthBalance": year_month_balance,
        "totalIncomesOutcome": total_incomes_outcome,
        "balancesPerDays": balances_per_days,
        "monthlyAverageProviderFees": monthly_fees,
        "creditCardOutcomes": card_outcomes,
        "creditCardOutcomesByCat": card_by_cat,
        "creditCardFees": card_fees,
        "savingsAndSecurities": {
            "totalSavings": total(savings, "amount"),
            "totalSecuritiesValue": total(securities, "totalValue"),
            "totalForeignCurrencyAmount": [{"currency": c, "amount": money(v)} for c, v in sorted(foreign.items())],
        },
        "savings": savings,
        "securities": securities,
        # Returned checks, alerts, cancellations, foreclosures and overdue loans: the ledger has none.
        "countAkam": 0, "countAlertNotice": 0, "countCancelled": 0, "countForeclosure": 0, "countLoanOverDue": 0,
        "loansTotal": {"totalMortgageAmount": total(loans, "balance", lambda r: r["mainCategory"] == "MORTGAGE"),
                       "totalLoansAmount": total(loans, "balance", lambda r: r["mainCategory"] == "LOANS")},
        "loans": loans,
        "totalLoans": [],  # element shape unpublished (section 5)
    }


def _checking_row(account, customer_id: str) -> dict:
    return {"customerId": customer_id, "amount": money(account.balance), "providerId": provider_id(account),
            "accountNumber": account.number, "accountId": account.id, "currency": account.currency}


def report_pdf_sections(report: dict) -> list[tuple[str, list[str], list[list]]]:
    """The report as PDF tables (heading, columns, rows)."""
    tio = report["totalIncomesOutcome"]
    sas = report["savingsAndSecurities"]
    return [
        ("Income and expenses (monthly average)", ["Income", "Expenses", "Net"],
         [[tio["sumIncomePerMonth"], tio["sumExpansesPerMonth"], tio["sumNetIncomePerMonth"]]]),
        ("Regular income sources", ["Source", "Amount"],
         [[r["classificationSource"], r["amount"]] for r in tio["regularIncomeSources"]]),
        ("Checking accounts", ["Provider", "Account", "Currency", "Balance"],
         [[r["providerId"], r["accountNumber"], r["currency"], r["amount"]] for r in report["checkingAccounts"]]),
        ("Monthly balance", ["Month", "Income", "Expense", "Balance"],
         [[r["yearMonth"], r["sumIncome"], r["sumExpense"], r["balance"]] for r in report["yearMonthBalance"]]),
        ("Savings and securities", ["Total savings", "Total securities"], [[sas["totalSavings"], sas["totalSecuritiesValue"]]]),
        ("Loans", ["Category", "Account", "Balance"],
         [[r["mainCategory"], r["accountNumber"], r["balance"]] for r in report["loans"]]),
    ]
