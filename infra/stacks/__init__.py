"""One CDK stack per concern: storage, data, ml, api, events, observability."""
