"""The policy engine: applies a policy chain to requests, responses and live streams."""
