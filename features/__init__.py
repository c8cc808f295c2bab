"""Data in and features out: sources, the canonical contract, validation, feature engineering."""

import warnings

# pandera warns, on import, that typeguard < 3 (pinned by the AWS CDK's jsii) checks only the first
# element of a generic type; our schemas declare no generic types, and the warning was the first line
# of every `ordernimbus ingest` and of every pipeline step's log.
warnings.filterwarnings("ignore", message="Using typeguard < 3", category=UserWarning)
