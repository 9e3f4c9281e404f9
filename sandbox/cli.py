"""Command line: ``sandbox serve`` runs the sandbox, ``sandbox check`` runs contract tests against any server."""
from __future__ import annotations

import os
import sys

import click

from .config import load_config


@click.group()
@click.version_option(package_name="provider-sandbox")
def main():
    """provider-sandbox: local stand-in for the Open Finance, finoOS, finleap connect and Finpass APIs."""


@main.command()
@click.option("--host", envvar="SANDBOX_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="SANDBOX_PORT", default=8080, type=int, show_default=True)
@click.option("--workers", envvar="SANDBOX_WORKERS", default=1, type=int, show_default=True,
              help="More than 1 runs gunicorn with that many worker processes.")
@click.option("--store", envvar="SANDBOX_STORE", default="sqlite:///sandbox.db", show_default=True,
              help="sqlite:///path, memory:// (single worker only) or redis://host:port/db")
@click.option("--seed", envvar="SANDBOX_SEED", default=0, type=int, show_default=True)
@click.option("--job-delay", envvar="SANDBOX_JOB_DELAY", default=3.0, type=float, show_default=True,
              help="Seconds on the sandbox clock before a job is done; 0 = instant.")
@click.option("--reset/--keep", default=False, help="Start from an empty store (default: keep state).")
def serve(host, port, workers, store, seed, job_delay, reset):
    """Serve every provider on one port."""
    overrides = {"HOST": host, "PORT": port, "WORKERS": workers, "STORE": store, "SEED": seed, "JOB_DELAY": job_delay,
                 "TICKER": True}
    if store.startswith("memory:") and workers > 1:
        raise click.BadParameter("the memory store is per process; use sqlite or redis with --workers > 1",
                                 param_hint="--store")
    from . import create_app
    from .core.context import Sandbox

    boot = Sandbox(load_config(overrides))  # applies --seed/--reset once, before workers start
    if reset:
        boot.store.clear()
    boot.seed.set(seed)
    click.echo(f"provider-sandbox on http://{host}:{port} (store {store}, seed {seed}, workers {workers})", err=True)
    if workers <= 1:
        from werkzeug.serving import run_simple

        run_simple(host, port, create_app(overrides), threaded=True, use_reloader=False)
        return
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")

        def load(self):
            return create_app(overrides)

    _Gunicorn().run()


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("provider")
@click.option("--base-url", default=None, help="Run over HTTP against this server (sandbox or real provider).")
@click.option("--client-id", default=None)
@click.option("--client-secret", default=None)
@click.option("--user-id", default=None, help="Open Finance: the userId tokens are issued for.")
@click.option("--real-provider", is_flag=True, help="Target is the real provider: skip control-API tests.")
@click.pass_context
def check(ctx, provider, base_url, client_id, client_secret, user_id, real_provider):
    """Run PROVIDER's contract tests (in-process by default); extra arguments go to pytest."""
    import pytest

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.path.join(here, "contract_tests", f"test_{provider}.py")
    if not os.path.exists(target):
        raise click.BadParameter(f"no contract tests for {provider!r}", param_hint="PROVIDER")
    args = [target, "-p", "contract_tests.plugin"]
    for flag, value in (("--base-url", base_url), ("--client-id", client_id), ("--client-secret", client_secret),
                        ("--user-id", user_id)):
        if value:
            args += [flag, value]
    if real_provider:
        args.append("--real-provider")
    sys.exit(pytest.main(args + list(ctx.args)))


if __name__ == "__main__":
    main()
