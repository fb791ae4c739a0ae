"""rbac-binding: no broad RBAC bindings."""

from __future__ import annotations

from webhook.review import AdmissionRequest
from webhook.verdict import Object, PolicyContext, Violation

POLICY = "rbac-binding"


class RbacBinding:
    name = POLICY

    def applies_to(self, request: AdmissionRequest) -> bool:
        return False

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        return []
