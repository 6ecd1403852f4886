"""`python -m arbitrage.cli`: the detached supervisor is started this way."""

from arbitrage.cli import main

main()
