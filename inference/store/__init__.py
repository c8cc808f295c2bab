"""The forecast store port: atomic forecast sets, SQLite embedded and PostgreSQL in production.

This package is imported by serving/ and must stay importable without pandas, numpy or pyarrow.
"""
