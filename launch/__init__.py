"""Launchers: hyperparameter sweeps (one machine or SLURM arrays) and multi-host runs."""
