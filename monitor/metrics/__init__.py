"""Metrics: per-comment scores turned into community health — rollups, dynamics, alerts, exports."""
