"""Readers that turn what a retailer brings (CSV, Excel, Parquet, Shopify orders) into rows.

Each tabular reader yields raw chunks with the user's own column names and file row numbers, so
every later problem can point at the exact cell; :mod:`features.sources.mapping` decides which
column is which, :mod:`features.sources.convert` types the cells, and
:mod:`features.sources.aggregate` folds transaction lines into daily totals. Shopify orders
skip the tabular stage and become typed lines directly. :mod:`features.ingest` wires them up.
"""
