"""civmon: a self-hosted civility monitor for online communities."""

__version__ = "0.1.0"
