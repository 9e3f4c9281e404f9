"""The ``financialReport`` object (open_finance.md section 5), computed from the user's ledgers.

Every figure is derived from the same transactions the data API serves, with Decimal arithmetic, so the report's
totals equal their parts: net = income - expenses, loansTotal = sum(loans[].balance) by category,
totalSavings = sum(savings[].amount), totalSecuritiesValue = sum(securities[].totalValue), and per card and month
sum(creditCardOutcomesByCat) = creditCardOutcomes. Months, monthly income/expense and daily balances are the
shared ledger analytics (sandbox/ledger/analytics.py).
"""
from __future__ import annotations

from collections import Counter, defaultdict
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
LOCAL = "ILS"   # amounts are ILS unless a currency says otherwise (open_finance.md s.5)
# Ledger incident events (sandbox/ledger/models.Transaction.event, generated for IL by fixtures/markets/IL.yaml
# `features`) behind the report's count* fields (s.5) and the monthly report's counts (s.6). Israeli terms:
# akam (אכ"מ, "insufficient funds") = a cheque returned unpaid; alert notice = the bank's warning before it restricts
# the account; foreclosure = an attachment (עיקול); loan overdue = a missed loan instalment (inferred mapping).
REPORT_COUNTS = {"countAkam": "cheque_returned", "countAlertNotice": "alert_notice",
                 "countCancelled": "cheque_cancelled", "countForeclosure": "foreclosure",
                 "countLoanOverDue": "loan_arrears"}
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


def month_key_from_label(label: str) -> tuple[int, int]:
    year, month = label.rsplit("-", 1)
    return int(year), int(month)


def incident_counts(accounts, first: date, last: date) -> Counter:
    """How many bookings of each ledger ``event`` the accounts have between ``first`` and ``last`` (inclusive)."""
    return Counter(t.event for a in accounts for t in a.transactions
                   if t.event and first <= t.booking_date <= last)


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
    """The financialReport for ``customer_id`` as of ``today`` (the sandbox clock's date at job creation).

    Monthly income, expenses, balances and fees are the shekel checking accounts' (amounts are ILS unless a
    ``currency`` says otherwise, section 5); foreign-currency checking accounts appear in ``checkingAccounts`` and
    ``totalForeignCurrencyAmount`` only. The count* fields count the ledger's incident bookings (INCIDENTS)."""
    accounts = [a for lg in ledgers for a in lg.accounts]
    all_checking = [a for a in accounts if a.kind == "checking"]
    checking = [a for a in all_checking if a.currency == LOCAL]
    cards = [a for a in accounts if a.kind == "credit_card"]
    months = _months(ledgers, today)
    full_months = [m for m in months if m != _ym(today)] or months  # averages use complete months only
    main = checking[0] if checking else (all_checking or accounts or [None])[0]
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
        if a.currency != LOCAL and a.kind in ("checking", "savings"):
            foreign[a.currency] += a.balance

    first = date(*month_key_from_label(months[-1]), 1) if months else today
    counts = incident_counts(accounts, first, today)

    def total(rows, key, where=lambda r: True):
        return money(sum((Decimal(str(r[key])) for r in rows if where(r)), Decimal(0)))

    return {
        "customerId": customer_id,
        "ownerName": owner,
        "parsedAccountNumber": split_bban(main.number)[2] if main else "",
        "providerId": provider_id(main) if main else "",
        "currentDate": today.isoformat(),
        "checkingAccountsILS": [_checking_row(a, customer_id) for a in checking],
        "checkingAccounts": [_checking_row(a, customer_id) for a in all_checking],
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
        # incidents of the report's months (guide: integers, null when there is no data)
        **{field: (counts[event] if accounts else None) for field, event in REPORT_COUNTS.items()},
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


# --- credit metrics: one place behind the monthly report, decisions and private scoring (open_finance.md s.6) -------
# Every figure is recomputed from the ledgers of the user's ACTIVE/COMPLETED connections as they were when the job
# (or report) was created. Income and expenses are the shekel checking accounts' (like the financial report).
METRIC_MONTHS = 12   # (inferred) decisions look at up to 12 complete months before today
MONTHLY_EVENTS = {   # monthly report count -> ledger event (the Israeli terms of REPORT_COUNTS above)
    "canceledChecks": "cheque_cancelled", "standingOrdersReturns": "standing_order_returned",
    "accountForeclosure": "foreclosure", "nsf": "cheque_returned", "transfersForFallingBehind": "arrears_payment",
    "limitationAlert": "alert_notice", "fallingBehindWarnings": "loan_arrears"}


def _previous_month(today: date) -> tuple[int, int]:
    return (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)


def _month_bounds(month: tuple[int, int]) -> tuple[date, date]:
    first = date(month[0], month[1], 1)
    return first, (date(first.year + (first.month == 12), first.month % 12 + 1, 1) - timedelta(days=1))


def _local_checking(accounts) -> list:
    return [a for a in accounts if a.kind == "checking" and a.currency == LOCAL]


def _overdraft_days(checking, first: date, last: date) -> int:
    """Days in [first, last] whose end-of-day balance over the shekel checking accounts is below zero."""
    if not checking or last < first:
        return 0
    daily: dict[date, Decimal] = defaultdict(Decimal)
    for account in checking:
        for day, balance in balance_history(account.balance, account.transactions, first, last):
            daily[day] += balance
    return sum(1 for value in daily.values() if value < 0)


def credit_metrics(ledgers: list[Ledger], today: date) -> dict:
    """The figures decisions and private scoring judge: monthly averages over up to METRIC_MONTHS complete
    months, incidents, overdraft days, debt and assets (Decimal and int values)."""
    accounts = [a for lg in ledgers for a in lg.accounts]
    checking = _local_checking(accounts)
    days = [t.booking_date for a in accounts for t in a.transactions if t.booking_date <= today]
    last_month = _previous_month(today)
    months: list[tuple[int, int]] = []
    if days:
        first_seen = month_key(min(days))
        month = last_month
        while month >= first_seen and len(months) < METRIC_MONTHS:
            months.append(month)
            month = (month[0] - 1, 12) if month[1] == 1 else (month[0], month[1] - 1)
    first = _month_bounds(months[-1])[0] if months else today
    last = _month_bounds(last_month)[1] if months else today - timedelta(days=1)
    income = expense = Decimal(0)
    regular_months = set()
    for a in checking:
        for t in a.transactions:
            if not first <= t.booking_date <= last:
                continue
            b = Booking(t.booking_date, t.amount, t.category, t.counterparty)
            if _is_income(b):
                income += t.amount
                if t.category in REGULAR_INCOME:
                    regular_months.add(month_key(t.booking_date))
            elif _is_expense(b):
                expense -= t.amount
    n = Decimal(len(months))
    counts = incident_counts(accounts, first, last)
    return {
        "months": len(months),
        "averageMonthlyIncome": _cents(_average(income, n)),
        "averageMonthlyExpenses": _cents(_average(expense, n)),
        "regularIncomeMonths": len(regular_months),
        "overdraftDays": _overdraft_days(checking, first, last),
        "loansOutstanding": sum((-a.balance for a in accounts if a.kind in ("loan", "mortgage")), Decimal(0)),
        "liquidAssets": sum((a.balance for a in accounts if a.kind in ("savings", "securities")
                             and a.currency == LOCAL), Decimal(0)),
        **{event: counts[event] for event in ("cheque_returned", "standing_order_returned", "cheque_cancelled",
                                              "alert_notice", "foreclosure", "loan_arrears")},
    }


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    return (numerator / denominator).quantize(CENT, rounding=ROUND_HALF_UP) if denominator else Decimal(0)


# Decision rules (provisional: the element shape of decision[] is unpublished, open_finance.md s.6 and s.13; keep
# this table and schemas/open_finance/defs/decision_item.json as the one place to replace). Each row:
# (parameter, value from the metrics, passes when, only in decision-extended). Thresholds are sandbox choices.
DECISION_RULES = (
    ("averageMonthlyIncome", lambda m: m["averageMonthlyIncome"], lambda v: v >= 4000, False),
    ("netMonthlyIncome", lambda m: m["averageMonthlyIncome"] - m["averageMonthlyExpenses"], lambda v: v >= 0, False),
    ("returnedCheques", lambda m: m["cheque_returned"], lambda v: v == 0, False),
    ("standingOrderReturns", lambda m: m["standing_order_returned"], lambda v: v == 0, False),
    ("foreclosures", lambda m: m["foreclosure"], lambda v: v == 0, False),
    ("overdueLoanInstalments", lambda m: m["loan_arrears"], lambda v: v == 0, False),
    ("overdraftDays", lambda m: m["overdraftDays"], lambda v: v <= 10, False),
    ("regularIncomeMonths", lambda m: m["regularIncomeMonths"], lambda v: v >= 1, True),
    ("cancelledCheques", lambda m: m["cheque_cancelled"], lambda v: v == 0, True),
    ("limitationAlerts", lambda m: m["alert_notice"], lambda v: v == 0, True),
    ("debtToYearlyIncome", lambda m: _ratio(m["loansOutstanding"], 12 * m["averageMonthlyIncome"]),
     lambda v: v <= Decimal("0.5"), True),
    ("liquidAssetsToMonthlyExpenses", lambda m: _ratio(m["liquidAssets"], m["averageMonthlyExpenses"]),
     lambda v: v >= 3, True),
)


def decision_items(metrics: dict, extended: bool = False) -> list[dict]:
    """decision[] items ``{parameter, value, passed}`` (provisional shape, s.6), from credit_metrics."""
    out = []
    for parameter, value_of, passes, extended_only in DECISION_RULES:
        if extended_only and not extended:
            continue
        value = value_of(metrics)
        out.append({"parameter": parameter, "value": money(value) if isinstance(value, Decimal) else value,
                    "passed": bool(passes(value))})
    return out


def private_score(metrics: dict) -> int:
    """finalScore (inferred formula, 300-850, documented in the README): 600, plus up to +/-100 for the net income
    ratio, +50 with liquid assets of 3 months' expenses, minus 40 per returned cheque, 30 per returned standing
    order, 100 per foreclosure, 50 per missed loan instalment, 10 per limitation alert and 2 per overdraft day."""
    income, expense = metrics["averageMonthlyIncome"], metrics["averageMonthlyExpenses"]
    net_ratio = (income - expense) / income if income else Decimal(-1)
    score = Decimal(600) + 100 * max(Decimal(-1), min(Decimal(1), net_ratio))
    if expense and metrics["liquidAssets"] >= 3 * expense:
        score += 50
    score -= (40 * metrics["cheque_returned"] + 30 * metrics["standing_order_returned"] + 100 * metrics["foreclosure"]
              + 50 * metrics["loan_arrears"] + 10 * metrics["alert_notice"] + 2 * metrics["overdraftDays"])
    return int(max(Decimal(300), min(Decimal(850), score)).to_integral_value(rounding=ROUND_HALF_UP))


def build_monthly_report(ledgers: list[Ledger], today: date, report_id: str, accounts_by_type: dict) -> dict:
    """The monthly report (s.6) of the last complete calendar month before ``today``: incomes and expenses of the
    shekel checking accounts, that month's incident counts, and loans, savings and accounts as of today.

    incomes.total = the month's income credits; expenses.total = its expense debits (transfers to the user's own
    savings, securities and FX accounts excluded); a returned cheque's or standing order's reversal is neither."""
    accounts = [a for lg in ledgers for a in lg.accounts]
    checking = _local_checking(accounts)
    first, last = _month_bounds(_previous_month(today))
    inc = {"total": Decimal(0), "incomeFromSalary": Decimal(0), "incomeFromChecks": Decimal(0),
           "regularIncomesSum": Decimal(0)}
    exp = {"total": Decimal(0), "expensesFromMortgage": Decimal(0), "expensesFromChecks": Decimal(0),
           "regularExpensesSum": Decimal(0)}
    for a in checking:
        for t in a.transactions:
            if not first <= t.booking_date <= last:
                continue
            b = Booking(t.booking_date, t.amount, t.category, t.counterparty)
            if _is_income(b):
                inc["total"] += t.amount
                inc["incomeFromSalary"] += t.amount if t.category == "salary" else 0
                inc["incomeFromChecks"] += t.amount if t.event == "cheque_deposit" else 0
                inc["regularIncomesSum"] += t.amount if t.category in REGULAR_INCOME else 0
            elif _is_expense(b):
                exp["total"] -= t.amount
                exp["expensesFromMortgage"] -= t.amount if t.category == "mortgage" else 0
                exp["expensesFromChecks"] -= t.amount if t.event == "cheque" else 0
                exp["regularExpensesSum"] -= t.amount if kind_of(t.category) == "regular" else 0
    checking_events = incident_counts(checking, first, last)
    loan_events = incident_counts([a for a in accounts if a.kind in ("loan", "mortgage")], first, last)
    counts = {field: (loan_events if event == "loan_arrears" else checking_events)[event]
              for field, event in MONTHLY_EVENTS.items()}
    loans = {a.number: -a.balance for a in accounts if a.kind in ("loan", "mortgage")}
    savings = [a for a in accounts if a.kind == "savings"]
    return {
        "openBankingReportId": report_id,
        "openBankingReportBalances": {
            "incomes": {k: money(v) for k, v in inc.items()},
            "expenses": {k: money(v) for k, v in exp.items()},
            "canceledChecks": counts["canceledChecks"], "standingOrdersReturns": counts["standingOrdersReturns"],
            # (inferred) irregular warnings: days the shekel checking accounts ended overdrawn in the month
            "irregularWarnings": _overdraft_days(checking, first, last),
            "accountForeclosure": counts["accountForeclosure"], "nsf": counts["nsf"],
            "transfersForFallingBehind": counts["transfersForFallingBehind"],
            "limitationAlert": counts["limitationAlert"], "fallingBehindWarnings": counts["fallingBehindWarnings"],
        },
        "MonthlyReportGeneralDetails": {
            "loans": {"totalLoansAmount": money(sum(loans.values(), Decimal(0))),
                      "bankLoans": {number: {"amount": money(v)} for number, v in loans.items()},
                      "creditCardLoans": {}},   # the ledger has no card loans
            "savings": {"totalSavingsAmount": money(sum((a.balance for a in savings), Decimal(0))),
                        "savingsDetails": {a.number: [{"amount": money(a.balance), "description": a.name}]
                                           for a in savings}},
            "accounts": {"checking": accounts_by_type.get("CHECKING", []),
                         "savings": accounts_by_type.get("SAVINGS", []),
                         "loans": accounts_by_type.get("LOAN", [])},
        },
    }
