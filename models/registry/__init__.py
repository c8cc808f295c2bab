"""The model registry port: SageMaker Model Registry semantics, embedded (SQLite) or on AWS."""
