"""Run orchestration over the engines: checkpointed runs and their state, watch, backtest.

Nothing here prints: results come back as data (``RunResult``, ``WatchOutcome``,
``BacktestReport``) for the CLI to show.
"""
