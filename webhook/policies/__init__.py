"""Validating policies, one module each. The engine lists them in `webhook.admission.POLICIES`."""
