"""Backtests: re-run a policy chain over recorded calls, with no upstream call, and record
what it would have changed (`just backtest`, docs/backtest.md).

`recorded` reads the calls a filter selects from a recorder database, `replay` runs the
chain over one of them exactly as the proxy would (`interlock.engine.policing`),
`estimate` counts and prices the judge calls first, `store` writes the run and its
results (`backtest_runs`, `backtest_results`), `cli` is the command.
"""
