"""Bulwark: a Kubernetes admission webhook that enforces a cluster's security baseline."""

__version__ = "0.1.0"
