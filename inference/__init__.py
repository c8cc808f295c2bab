"""Batch inference with an approved model version, and the forecast store it writes."""
