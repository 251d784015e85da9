"""`just trust`: print the shell exports that make clients use the proxy and trust its CA.

Python's httpx/httpx2 (the openai and anthropic SDKs), curl and openssl read
`SSL_CERT_FILE`, which *replaces* the default store: it gets a bundle of certifi's roots
plus the mitmproxy CA. `REQUESTS_CA_BUNDLE` is for `requests`, `CURL_CA_BUNDLE` for curl;
Node (Claude Code) adds `NODE_EXTRA_CA_CERTS` to its own store; Codex reads `CODEX_CA_CERTIFICATE`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import certifi

BUNDLE_NAME = "interlock-ca-bundle.pem"


def write_bundle(confdir: Path) -> tuple[Path, Path]:
    """(mitmproxy CA, combined bundle); raises FileNotFoundError without a CA."""
    ca = confdir / "mitmproxy-ca-cert.pem"
    if not ca.exists():
        raise FileNotFoundError(ca)
    bundle = confdir / BUNDLE_NAME
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca.read_bytes())
    return ca, bundle


def environment(ca: Path, bundle: Path, proxy: str) -> dict[str, str]:
    """The variables that send clients through `proxy` and make them trust its CA. The
    lower-case proxy names too: where both are set, Python and curl read those first."""
    return {
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "https_proxy": proxy,
        "http_proxy": proxy,
        "SSL_CERT_FILE": str(bundle),
        "REQUESTS_CA_BUNDLE": str(bundle),
        "CURL_CA_BUNDLE": str(bundle),
        "NODE_EXTRA_CA_CERTS": str(ca),
        "CODEX_CA_CERTIFICATE": str(ca),
    }


def exports(ca: Path, bundle: Path, proxy: str) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in environment(ca, bundle, proxy).items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--confdir", default="~/.mitmproxy", help="mitmproxy's confdir (where its CA lives)")
    parser.add_argument("--proxy", default="http://127.0.0.1:8080", help="the proxy's URL")
    args = parser.parse_args(argv)
    try:
        ca, bundle = write_bundle(Path(args.confdir).expanduser())
    except FileNotFoundError as missing:
        sys.stderr.write(f"No mitmproxy CA at {missing}: start the proxy once (`just proxy`) to create it.\n")
        return 1
    sys.stdout.write("\n".join(exports(ca, bundle, args.proxy)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
