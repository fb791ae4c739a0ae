"""pod-defaults: fsGroup and container resource defaults for new pods."""

from __future__ import annotations

from webhook.review import AdmissionRequest
from webhook.verdict import Object, PatchOperation, PolicyContext

NAME = "pod-defaults"


class PodDefaults:
    name = NAME

    def applies_to(self, request: AdmissionRequest) -> bool:
        return False

    def patch(self, obj: Object, context: PolicyContext) -> list[PatchOperation]:
        return []
