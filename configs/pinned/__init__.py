"""Pinned configs: get_config() plus get_expected(), the metrics a run must reach (maskae.reproduce)."""
