"""``sandbox proxy``, ``sandbox replay`` and ``sandbox drift``: the validating proxy, its stub server and the drift
report (attached to the main CLI in sandbox/cli.py with ``main.add_command``)."""
from __future__ import annotations

import json
import sys

import click

PROVIDERS_HELP = "open_finance | finleap | finpass | fino ('open-finance' works too)"


def _provider(value: str | None) -> str | None:
    from .proxy import provider_name

    if value is None:
        return None
    try:
        return provider_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--provider") from None


def _serve(app, host: str, port: int, what: str) -> None:
    from werkzeug.serving import make_server

    from ..core.journal import install_log_redaction

    install_log_redaction()   # access lines print query strings: no tokens or codes in the log
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"{what} on http://{host}:{port}  (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command()
@click.option("--provider", required=True, help=PROVIDERS_HELP)
@click.option("--upstream", required=True, metavar="URL",
              help="The provider's base URL (real, or a sandbox: http://127.0.0.1:8080/open-finance).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, type=int, show_default=True)
@click.option("--record", default=None, metavar="DIR", help="Write one cassette per exchange (secrets redacted).")
@click.option("--timeout", default=60.0, type=float, show_default=True, help="Seconds to wait for the upstream.")
def proxy(provider, upstream, host, port, record, timeout):
    """Forward a client's calls to UPSTREAM, validating each against the catalogue and schemas.

    \b
    Point the client's base URL at http://HOST:PORT and keep its paths. Every answer is the upstream's, plus
      X-Sandbox-Contract: valid | request-invalid | response-invalid | unknown-operation
                          | upstream-unreachable | unchecked (a Content-Encoding it cannot decode)
      X-Sandbox-Contract-Reason: the first problem, X-Sandbox-Operation: the catalogue id.
    GET /_proxy/journal lists the exchanges (secrets redacted). An unreachable upstream is a 502 JSON (504 on
    a timeout).
    """
    from urllib.parse import urlsplit

    from .proxy import create_proxy_app

    name = _provider(provider)
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{upstream!r} is not an http(s) URL", param_hint="--upstream")
    app = create_proxy_app(name, upstream, record=record, timeout=timeout)
    where = f", recording into {record}" if record else ""
    _serve(app, host, port, f"proxy for {name} -> {upstream}{where}")


@click.command()
@click.option("--cassettes", "directory", required=True, metavar="DIR", help="Directory written by --record.")
@click.option("--provider", default=None, help=f"Only this provider's cassettes: {PROVIDERS_HELP}.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, type=int, show_default=True)
def replay(directory, provider, host, port):
    """Serve recorded cassettes as a stub server (no upstream needed).

    Requests match by method, path and query (and body where the recordings differ by body); a repeated
    request gets the recorded answers in order, then the last one again. Unmatched requests get a 404 JSON.
    """
    from .cassettes import CassetteError, load_cassettes
    from .proxy import create_replay_app

    try:
        cassettes = load_cassettes(directory, _provider(provider))
    except CassetteError as exc:
        raise click.ClickException(str(exc)) from None
    if not cassettes:
        raise click.ClickException(f"no cassettes in {directory}" + (f" for {provider}" if provider else ""))
    _serve(create_replay_app(cassettes), host, port, f"replaying {len(cassettes)} cassettes from {directory}")


@click.command()
@click.argument("directory", metavar="DIR")
@click.option("--provider", default=None, help=f"Judge every cassette as this provider's: {PROVIDERS_HELP}.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift(directory, provider, as_json):
    """Report where recorded answers drift from the catalogue and the schemas.

    \b
    Lists responses violating their schema, fields the schemas do not declare, statuses the catalogue does not
    list and requests matching no operation. Exit code: 0 no drift, 1 drift found, 2 unusable input (no such
    directory, a file that is not a cassette, no cassettes).
    """
    from .cassettes import CassetteError, load_cassettes
    from .drift import drift_report, render_text

    try:
        cassettes = load_cassettes(directory)
        if not cassettes:
            raise CassetteError(f"no cassettes (*.json) in {directory}")
        report = drift_report(cassettes, _provider(provider))
    except (CassetteError, ValueError) as exc:
        click.echo(f"sandbox drift: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else render_text(report, directory))
    sys.exit(1 if report["drift"] else 0)


COMMANDS = (proxy, replay, drift)
