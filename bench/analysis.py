"""Heavy computations timed in-process for `make bench` (issues 10 and 14): a 24-month persona's generation, a
finoOS analysis run (categorization, account detection and history, contracts, cockpits) over ~5,000 bookings and a
Finpass analysis of an uploaded 12-month bank statement (PDF text extraction, table recognition, checks).

Run alone: `.venv/bin/python bench/analysis.py`; bench/run.py appends its lines to the report."""
from __future__ import annotations

import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contract_tests.test_fino_cockpits import person_upload   # noqa: E402  (the scale test's upload)
from sandbox import create_app   # noqa: E402
from sandbox.core.store import MemoryStore   # noqa: E402
from sandbox.ledger import generate_ledger   # noqa: E402


def persona_ms(repeat: int = 5) -> float:
    """Median milliseconds to generate one 24-month persona (every account, every booking)."""
    times = []
    for n in range(repeat):
        started = time.perf_counter()
        generate_ledger(n, f"bench-{n}", date(2025, 4, 23), market="DE", months=24)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def fino_analysis() -> tuple[int, float]:
    """(bookings, seconds) of one finoOS analysis run of a 24-month person uploaded through the API."""
    app = create_app({"SEED": 3}, store=MemoryStore())
    http = app.test_client()
    http.put("/_sandbox/jobs/policy", json={"mode": "manual", "kind": "fino.analysis"})
    http.post("/_sandbox/clock/freeze", json={"at": "2024-06-25T10:00:00Z"})
    token = http.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                              "grant_type": "client_credentials"}).get_json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    uid = http.post("/fino/api/users", json={"type": "person", "automaticAnalysis": "suspended"},
                    headers=h).get_json()["user"]["userID"]
    accounts, _ = person_upload(24, 185)
    for a in accounts:
        http.post(f"/fino/api/users/{uid}/banking/accounts", headers=h, json={"accounts": [{**a, "transactions": []}]})
        for i in range(0, len(a["transactions"]), 1500):
            http.post(f"/fino/api/users/{uid}/banking/accounts/{a['accountId']}/transactions", headers=h,
                      json={"transactions": a["transactions"][i:i + 1500]})
    run = http.post(f"/fino/api/users/{uid}/trigger-analysis", headers=h).get_json()["correlationID"]
    job = app.extensions["sandbox"].runs.get("sandbox-client", "fino.analysis", run)["job_id"]
    started = time.perf_counter()
    http.post(f"/_sandbox/jobs/{job}/advance", json={"tenant": "sandbox-client"})
    elapsed = time.perf_counter() - started
    if http.get(f"/fino/api/users/{uid}/cockpit/person", headers=h).status_code != 200:
        raise RuntimeError("the analysis run produced no cockpit")
    return sum(len(a["transactions"]) for a in accounts), elapsed


def finpass_statement(months: int = 12) -> tuple[int, int, float]:
    """(statement lines, PDF bytes, median seconds of 3) to analyse one uploaded 12-month statement PDF the way
    the Finpass BSA upload does: parse the PDF (pypdf), recognise the table, run the checks."""
    from sandbox.providers.finpass.parsing import analyse, parse_pdf
    from sandbox.providers.finpass.statements import build_statement, render_pdf

    ledger = generate_ledger(11, "bench-statement", date(2025, 4, 23), market="IN", months=months)
    statement = build_statement(ledger, months=months)
    pdf = render_pdf(statement)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        parsed = parse_pdf(pdf)
        analyse(parsed.account_info, parsed.lines, parsed.opening_balance, parsed.period_from, parsed.period_to)
        times.append(time.perf_counter() - started)
    return len(parsed.lines), len(pdf), statistics.median(times)


def report_lines() -> list[str]:
    persona = persona_ms()
    bookings, seconds = fino_analysis()
    lines, size, statement_s = finpass_statement()
    return ["", "## Heavy computations (in-process, one worker)", "",
            f"- 24-month persona generated (DE, every account): **{persona:.0f} ms** (median of 5; target 100 ms: "
            f"{'met' if persona <= 100 else 'not met'})",
            f"- finoOS analysis run over {bookings:,} bookings (24 months: categorization, account detection and "
            f"history, contracts, cockpits): **{seconds:.2f} s**",
            f"- Finpass analysis of an uploaded 12-month statement PDF ({lines:,} lines, {size / 1024:,.0f} KB: text "
            f"extraction, table recognition, balance checks): **{statement_s * 1000:.0f} ms** (median of 3)"]


if __name__ == "__main__":
    print("\n".join(report_lines()))
