"""One entrypoint per pipeline step, each run as ``python -m pipelines.steps.<name> --sm-base DIR``."""
