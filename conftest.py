"""Root conftest: loaded for tests/ and contract_tests/ alike."""
import os
from datetime import datetime, timezone


def _shift_wall_clock(when: str) -> None:
    """``SANDBOX_TEST_NOW=HH:MM`` (UTC, today) or ``=YYYY-MM-DDTHH:MM`` runs the suite as if the real clock read that:
    date-boundary bugs (the Indian or Israeli day already tomorrow, a month or leap day turning) show at any hour,
    not only in a CI run that happens to start late. Moves the wall clock of this process, which then ticks on."""
    import sandbox.core.clock as clock
    real = clock.wall_clock
    start = real()
    if "T" in when:
        target = datetime.fromisoformat(when).replace(tzinfo=timezone.utc)
    else:
        hour, minute = (int(x) for x in when.split(":"))
        target = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
    shift = target - start
    clock.wall_clock = lambda: real() + shift


if os.environ.get("SANDBOX_TEST_NOW"):
    _shift_wall_clock(os.environ["SANDBOX_TEST_NOW"])
