"""Monitoring: notice when a tenant's forecasts go stale, decide whether to retrain, say why.

``check.run_check`` is the one entry point (CLI ``ordernimbus monitor check``, the monitor Lambda
``lambda_handler.handler``): it scores the forecasts that covered newly arrived actuals
(``accuracy``), compares the latest weeks with the training window (``drift``, ``windows``),
evaluates the tenant's retraining policy (``policy``), starts the build pipeline through
``trigger`` unless debounced, records the decision and writes the reports (``reports``).
Rows live in the forecast store's database (inference/store/monitoring.py).
"""
