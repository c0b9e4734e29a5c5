"""`python -m monitor` is the `civmon` command."""

from monitor.cli import main

main()
