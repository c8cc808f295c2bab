"""Forecasters, the ensemble, metrics, backtests, explanations and the model registry."""
