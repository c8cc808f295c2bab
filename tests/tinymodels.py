"""Members small enough for unit tests: the real classes with a few seconds' training."""

from __future__ import annotations

from models.deepar import DeepARForecaster


def tiny_deepar(horizon: int = 14) -> DeepARForecaster:
    """One epoch of four small batches through a one-layer, eight-unit network."""
    return DeepARForecaster(
        horizon=horizon,
        max_epochs=1,
        batches_per_epoch=4,
        batch_size=16,
        hidden_size=8,
        num_layers=1,
        num_samples=50,
    )
