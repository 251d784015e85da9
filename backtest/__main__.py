"""`python -m backtest` (`just backtest`): see `backtest.cli`."""

import sys

from backtest.cli import main

sys.exit(main())
