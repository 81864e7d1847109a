"""`python -m edge.diag --config STATION.toml ...` (the same as `edge diag`)."""

from edge.diag.cli import main

main()
