"""Datasets: the synthetic generator and annotation validation."""
