"""The usage ledger: one row per upstream call (who, which model, tokens, cost, latency, outcome --
never content), written in the background (``writer``), recorded from the gateway (``recorder``)
and read for ``GET /usage``, the admin CLI and budgets (``report``)."""

from lib.ledger.recorder import CallContext, LedgerRecorder
from lib.ledger.report import monthly_spend, usage_report
from lib.ledger.writer import LedgerWriter

__all__ = ["CallContext", "LedgerRecorder", "LedgerWriter", "monthly_spend", "usage_report"]
