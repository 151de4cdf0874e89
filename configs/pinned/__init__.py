"""Pinned configs: get_config() and get_expected(), the metrics a run must reach
(checked by `python -m maskae.reproduce <file>`)."""
