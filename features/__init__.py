"""Data in and features out: sources, the canonical contract, validation, feature engineering."""
