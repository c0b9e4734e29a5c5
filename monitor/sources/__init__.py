"""Sources: where comments come from. Each yields the records of `monitor.records`."""
