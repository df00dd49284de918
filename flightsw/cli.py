"""The ``flightsw`` command.

* ``flightsw run --config FILE`` — the daemon on the real board.
* ``flightsw hil [--scenario FILE]`` — the same daemon on the simulated board, in lockstep (or ``--realtime``).
* ``flightsw check-config FILE...`` — validate flight configs, board profiles and HIL scenarios.
* ``flightsw safe-outputs --config FILE`` — drive every output line inactive (systemd ``ExecStopPost``).
* ``flightsw docs [--check]`` — regenerate (or verify) the generated docs.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import structlog

from flightsw import logsetup
from flightsw.config.loader import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = PACKAGE_ROOT / "config" / "hil" / "nominal.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flightsw", description="Flight software for near-space aerostats.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the flight daemon on the real board")
    run.add_argument("--config", required=True, type=Path, help="flight configuration (config/flight.yaml)")
    run.add_argument("--log-level", choices=logsetup.LEVELS, help="override the configured log level")
    run.set_defaults(handler=_cmd_run)

    hil = sub.add_parser("hil", help="fly the daemon on the simulated board")
    hil.add_argument("--scenario", type=Path, default=None,
                     help=f"scenario file (default: the nominal flight, {DEFAULT_SCENARIO.name})")
    hil.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    hil.add_argument("--runs", type=int, default=1, help="Monte-Carlo runs with dispersions (in parallel)")
    hil.add_argument("--jobs", type=int, default=None, help="worker processes for --runs (default: CPU count)")
    hil.add_argument("--realtime", action="store_true",
                     help="pace the simulation to the wall clock and open the ground link on UDP")
    hil.add_argument("--udp", default="127.0.0.1:14550",
                     help="with --realtime: where to send the ground link (default 127.0.0.1:14550)")
    hil.add_argument("--out", type=Path, default=None, help="write the report, plots, KML and .tlog here")
    hil.add_argument("--log-level", choices=logsetup.LEVELS, default="warning")
    hil.add_argument("--no-progress", action="store_true", help="no progress bar")
    hil.set_defaults(handler=_cmd_hil)

    check = sub.add_parser("check-config", help="validate configuration files and print every error")
    check.add_argument("files", nargs="+", type=Path)
    check.set_defaults(handler=_cmd_check_config)

    safe = sub.add_parser("safe-outputs", help="drive every output line inactive and exit")
    safe.add_argument("--config", required=True, type=Path, help="flight configuration or board profile")
    safe.set_defaults(handler=_cmd_safe_outputs)

    docs = sub.add_parser("docs", help="regenerate the docs generated from the declarations")
    docs.add_argument("--check", action="store_true", help="exit non-zero if a generated doc is out of date")
    docs.add_argument("--dir", type=Path, default=PACKAGE_ROOT / "docs")
    docs.set_defaults(handler=_cmd_docs)
    return parser


def _print_config_error(error: ConfigError) -> None:
    for issue in error.issues:
        print(f"error: {issue}", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    from flightsw.app import Daemon
    from flightsw.clock import MonotonicClock
    from flightsw.config.flight import load_flight_config

    try:
        config = load_flight_config(args.config)
    except ConfigError as error:
        _print_config_error(error)
        return 2
    logsetup.configure(args.log_level or config.logging.level)
    log = structlog.get_logger("cli")
    from hal.board import build_hal

    from flightsw.link.signing import KeyFileError

    hal = build_hal(config.board)
    try:
        daemon = Daemon(config, hal, MonotonicClock())
    except KeyFileError as error:
        hal.close()
        print(f"error: {config.source}: link.signing.key_file: {error}", file=sys.stderr)
        return 2
    except Exception:
        hal.close()
        raise

    def stop(signum: int, _frame: object) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        daemon.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        daemon.run()
    finally:
        daemon.shutdown()
    return 3 if daemon.restart_requested else 0


def _cmd_hil(args: argparse.Namespace) -> int:
    from hil.cli import run_hil

    logsetup.configure(args.log_level)
    try:
        return run_hil(args, default_scenario=DEFAULT_SCENARIO)
    except ConfigError as error:
        _print_config_error(error)
        return 2


def _cmd_check_config(args: argparse.Namespace) -> int:
    from flightsw.config.check import check_file

    failures = 0
    for path in args.files:
        issues, kind = check_file(path)
        if issues:
            failures += 1
            for issue in issues:
                print(f"error: {issue}", file=sys.stderr)
        else:
            print(f"ok: {path} ({kind})")
    return 1 if failures else 0


def _cmd_safe_outputs(args: argparse.Namespace) -> int:
    from flightsw.config.check import load_board_of

    try:
        board = load_board_of(args.config)
    except ConfigError as error:
        _print_config_error(error)
        return 2
    from hal.board import safe_outputs

    names = safe_outputs(board)
    print(f"safe: {', '.join(names)} inactive")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from flightsw.docs_gen import write_docs

    stale = write_docs(args.dir, check=args.check)
    for name in stale:
        print(f"{'out of date' if args.check else 'written'}: {args.dir / name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
