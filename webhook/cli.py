"""The `bulwark` command: parse, call one function, set the exit status.

Exit statuses: 0 success (or everything admitted), 1 something denied (evaluate) or the
cluster refused a change (register), 2 bad usage or unreadable input. Errors are one line
on stderr naming the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from webhook import __version__
from webhook.errors import BulwarkError, printable
from webhook.request import DNS_LABEL

EXIT_OK, EXIT_DENIED, EXIT_USAGE = 0, 1, 2
OUTPUTS = ("text", "json", "junit", "sarif")
OPERATIONS = ("CREATE", "UPDATE")


def dns_label(text: str) -> str:
    """A Kubernetes service or namespace name (RFC 1123 label), for argparse."""
    if not DNS_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid name: lower-case letters, digits and '-', at most 63"
        )
    return text


def _bounded(kind: type[int] | type[float], low: float, high: float | None = None) -> Any:
    """An argparse type: a number of `kind` from `low` up to `high`, else a clear error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or (high is not None and value > high):
            upper = f" and at most {high:g}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"{text} is out of range: at least {low:g}{upper}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _serve(args: argparse.Namespace) -> int:
    from webhook.server import ServeOptions, serve

    return serve(
        ServeOptions(
            host=args.host,
            port=args.port,
            cert_dir=args.cert_dir,
            config_path=args.config,
            workers=args.workers,
            log_level=args.log_level,
            max_body_bytes=args.max_body_bytes,
            drain_seconds=args.drain_seconds,
            cert_poll_seconds=args.cert_poll_seconds,
            request_read_seconds=args.request_read_seconds,
            kubeconfig=args.kubeconfig,
            service=args.service,
            namespace=args.namespace,
        )
    )


def _evaluate(args: argparse.Namespace) -> int:
    from webhook.evaluate import run_cli

    return run_cli(
        args.paths,
        config_path=args.config,
        namespace=args.namespace,
        operation=args.operation,
        output=args.output,
    )


def _certs(args: argparse.Namespace) -> int:
    from webhook.certs import generate_bundle, service_hosts, write_bundle

    hosts = service_hosts(args.service, args.namespace, tuple(args.host))
    for path in write_bundle(generate_bundle(hosts, days=args.days), args.out, force=args.force):
        print(path)
    return EXIT_OK


def _manifests(args: argparse.Namespace) -> int:
    from webhook.registration import print_manifests

    return print_manifests(
        ca_bundle=args.ca_bundle, url=args.url, namespace=args.namespace, service=args.service
    )


def _register(args: argparse.Namespace) -> int:
    from webhook.registration import register

    return register(
        kubeconfig=args.kubeconfig,
        ca_bundle=args.ca_bundle,
        url=args.url,
        namespace=args.namespace,
        service=args.service,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bulwark", description="Kubernetes admission webhook for a security baseline."
    )
    parser.add_argument("--version", action="version", version=f"bulwark {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="serve the admission webhooks over HTTPS")
    serve.add_argument("--config", help="policy configuration YAML (default: built-in)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on")  # noqa: S104
    serve.add_argument("--port", type=_bounded(int, 0, 65535), default=8443, help="0: any free")
    serve.add_argument("--cert-dir", default="certs", help="folder with tls.crt and tls.key")
    serve.add_argument("--workers", type=_bounded(int, 1), default=1, help="worker processes")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--max-body-bytes", type=_bounded(int, 1024), default=8 * 1024 * 1024)
    serve.add_argument(
        "--drain-seconds",
        type=_bounded(float, 1, 3600),
        default=20.0,
        help="how long requests in flight may take to finish after SIGTERM",
    )
    serve.add_argument(
        "--cert-poll-seconds",
        type=_bounded(float, 0.1, 3600),
        default=5.0,
        help="how often the certificate files are checked for a new pair",
    )
    serve.add_argument(
        "--request-read-seconds",
        type=_bounded(float, 0.1, 600),
        default=10.0,
        help="how long a request may take to arrive whole before its connection is closed",
    )
    serve.add_argument("--kubeconfig", help="kubeconfig for the role cache (default: in-cluster)")
    serve.add_argument(
        "--service", type=dns_label, default="bulwark", help="service name for a self-signed pair"
    )
    serve.add_argument("--namespace", type=dns_label, default="bulwark-system")
    serve.set_defaults(handler=_serve)

    evaluate = commands.add_parser("evaluate", help="judge manifests offline, as the webhook would")
    evaluate.add_argument("paths", nargs="*", help="files or folders; '-' or none for stdin")
    evaluate.add_argument("--config")
    evaluate.add_argument("--namespace", type=dns_label, default="default")
    # In any case, as `POST /evaluate?operation=` takes it.
    evaluate.add_argument("--operation", default="CREATE", type=str.upper, choices=OPERATIONS)
    evaluate.add_argument("--output", "-o", default="text", choices=OUTPUTS)
    evaluate.set_defaults(handler=_evaluate)

    certs = commands.add_parser("certs", help="make a CA and a serving certificate")
    certs.add_argument("--out", required=True, help="folder for ca.crt, ca.key, tls.crt, tls.key")
    certs.add_argument("--service", type=dns_label, default="bulwark")
    certs.add_argument("--namespace", type=dns_label, default="bulwark-system")
    certs.add_argument("--days", type=int, default=365)
    certs.add_argument("--host", action="append", default=[], help="an extra DNS name or IP")
    certs.add_argument("--force", action="store_true", help="replace existing files")
    certs.set_defaults(handler=_certs)

    manifests = commands.add_parser("manifests", help="print the webhook configurations")
    manifests.add_argument("--ca-bundle", help="PEM file of the CA that signed the serving cert")
    manifests.add_argument("--url", help="base URL of a webhook outside the cluster")
    manifests.add_argument("--namespace", type=dns_label, default="bulwark-system")
    manifests.add_argument("--service", type=dns_label, default="bulwark")
    manifests.set_defaults(handler=_manifests)

    register = commands.add_parser("register", help="create or update the configurations")
    register.add_argument("--kubeconfig")
    register.add_argument("--ca-bundle")
    register.add_argument("--url")
    register.add_argument("--namespace", type=dns_label, default="bulwark-system")
    register.add_argument("--service", type=dns_label, default="bulwark")
    register.set_defaults(handler=_register)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except BulwarkError as error:
        shown = printable(str(error), keep_line_breaks=True)
        print(f"bulwark {args.command}: error: {shown}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return status
