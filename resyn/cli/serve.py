"""``resyn serve``: the reward server (:mod:`resyn.serve`) for trainers on other hosts.

It prints where it listens, serves until SIGINT or SIGTERM, then stops accepting, lets requests in
flight finish (``--drain-timeout``), closes the sandbox workers and exits 0 with one line on
stderr. A second signal cuts the drain short.
"""

from __future__ import annotations

import errno
import signal
import threading
from pathlib import Path
from types import FrameType

import click
from rich.markup import escape

from resyn.catalog import default_catalog_path
from resyn.cli.app import cli, console, err_console, fail, unsafe_option
from resyn.cli.catalog import catalog_option
from resyn.reward import RewardConfig, RewardScorer
from resyn.serve import RewardServer, ServeConfig


@cli.command("serve")
@catalog_option
@click.option(
    "--env",
    "env_ids",
    multiple=True,
    metavar="ID",
    help="Serve only these environments (repeatable; default: every environment with --status).",
)
@click.option("--status", default="accepted", show_default=True, help="Which catalog environments to serve.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one)."
)
@click.option(
    "--workers-per-env",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Sandboxed workers per environment.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(1, 100_000),
    default=64,
    show_default=True,
    help="Scoring requests admitted at once; more get 503 with Retry-After.",
)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(0.01, 4096),
    default=64.0,
    show_default=True,
    help="Largest request body in MiB; larger ones get 413.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0.1, 86_400),
    default=150.0,
    show_default=True,
    help="Seconds a request may take before it gets 504 (OpenRLHF's client waits 180).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(0, 3600),
    default=30.0,
    show_default=True,
    help="Seconds requests in flight get to finish on SIGINT/SIGTERM.",
)
@unsafe_option
def serve_command(
    catalog_path: Path | None,
    env_ids: tuple[str, ...],
    status: str,
    host: str,
    port: int,
    workers_per_env: int,
    max_queue: int,
    max_body_mb: float,
    request_timeout: float,
    drain_timeout: float,
    unsafe_no_sandbox: bool,
) -> None:
    """Serve rewards over HTTP: POST /get_reward (OpenRLHF), POST /score, GET /health."""
    path = catalog_path if catalog_path is not None else default_catalog_path()
    defaults = RewardConfig()
    reward_config = RewardConfig(
        workers_per_env=workers_per_env,
        sandbox=defaults.sandbox.model_copy(update={"unsafe_no_sandbox": unsafe_no_sandbox}),
    )
    config = ServeConfig(
        host=host,
        port=port,
        max_queue=max_queue,
        max_body_bytes=int(max_body_mb * (1 << 20)),
        request_timeout_s=request_timeout,
        drain_timeout_s=drain_timeout,
    )
    scorer = RewardScorer.from_catalog(path, list(env_ids) or None, status=status, config=reward_config)
    if not scorer.env_ids:
        scorer.close()
        fail(
            f"catalog {path} has no environments with status {status!r}: synthesize some first, "
            "or choose others with --status or --env ID"
        )
    try:
        server = RewardServer(scorer, config)
    except OSError as exc:
        scorer.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is in use: pass another --port (or --port 0 for any free port)")
        fail(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}: pass --host with an address of this machine"
        )

    signals: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)
        if stop.is_set():
            server.hurry()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        count = len(scorer.env_ids)
        console.print(
            f"resyn serve: listening on {escape(server.url)} ({count} environment{'s' * (count != 1)}); "
            "POST /get_reward (OpenRLHF), POST /score, GET /health"
        )
        while not stop.wait(0.5):
            pass
        name = signal.Signals(signals[0]).name
        in_flight = server.health().queue_depth
        err_console.print(
            f"resyn serve: {name}: stopping; {in_flight} request{'s' * (in_flight != 1)} in flight "
            f"get up to {config.drain_timeout_s:g} s"
        )
        server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop(0)
