"""The policy contract: the Policy base, its per-call context, decisions and the chain."""
