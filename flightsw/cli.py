"""The ``flightsw`` command.

* ``flightsw run --config FILE`` — the daemon on the real board.
* ``flightsw hil [--scenario FILE]`` — the same daemon on the simulated board, in lockstep (or ``--realtime``).
* ``flightsw check-config FILE...`` — validate flight configs, board profiles and HIL scenarios.
* ``flightsw safe-outputs --config FILE`` — drive every output line inactive (systemd ``ExecStopPost``); it needs
  only the board profile, so a broken flight configuration never stops it (``--board FILE`` names the profile).
* ``flightsw docs [--check]`` — regenerate (or verify) the generated docs.

No input makes a command end in a Python traceback: problems in files are printed as ``error: file:line:col: key:
message``, a missing GPIO pin library is explained, an operating-system error is printed with its file, and
anything else is caught by a last resort that prints one ``error: internal error ...`` line with the place in the
code and exits 2 (``FLIGHTSW_TRACEBACK=1`` shows the whole traceback instead).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import warnings
from pathlib import Path

import structlog

from flightsw import logsetup
from flightsw.config.issues import clip
from flightsw.config.loader import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = PACKAGE_ROOT / "config" / "hil" / "nominal.yaml"
EXIT_INTERNAL_ERROR = 2
GPIO_LIBRARY_HELP = ("no GPIO pin library: gpiozero found none it can use (lgpio, RPi.GPIO, pigpio, or its own "
                     "driver on a Raspberry Pi).  On the Pi, install flightsw with its 'pi' extra: "
                     "pip install '.[pi]' (lgpio).  To bench-test without a Pi, set GPIOZERO_PIN_FACTORY=mock.")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - the last resort: no input ever ends in a traceback
        if os.environ.get("FLIGHTSW_TRACEBACK"):
            raise
        if isinstance(error, OSError):  # the machine said no (a folder that cannot be made, a busy device)
            print(f"error: {error.filename or _inputs_of(args)}: {error.strerror or error}", file=sys.stderr)
        else:
            print(f"error: {internal_error_text(error, _inputs_of(args))}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def internal_error_text(error: BaseException, inputs: str = "") -> str:
    """One line for an unexpected exception: what it was and where in the code it was raised."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = ""
    if frame is not None:
        code = frame.tb_frame.f_code
        try:
            filename = str(Path(code.co_filename).resolve().relative_to(PACKAGE_ROOT))
        except ValueError:
            filename = code.co_filename
        where = f" at {filename}:{frame.tb_lineno} in {code.co_name}"
    about = f" while handling {inputs}" if inputs else ""
    return (f"internal error{about}: {type(error).__name__}: {clip(str(error), 200)}{where} (a bug: please "
            "report it; FLIGHTSW_TRACEBACK=1 shows the traceback)")


def _inputs_of(args: argparse.Namespace) -> str:
    files = [getattr(args, name, None) for name in ("config", "board", "scenario")] + list(getattr(args, "files", []))
    return ", ".join(str(path) for path in files if path)


def gpio_library_missing(error: BaseException) -> bool:
    """True for the errors gpiozero raises when no pin library is installed (or the one named is not)."""
    from gpiozero.exc import BadPinFactory

    if isinstance(error, BadPinFactory):
        return True
    return isinstance(error, ImportError) and (error.name or "").split(".")[0] in ("lgpio", "RPi", "pigpio")


@contextlib.contextmanager
def _without_pin_factory_warnings():
    """gpiozero warns once per library it falls back from; GPIO_LIBRARY_HELP says it better."""
    from gpiozero.exc import PinFactoryFallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PinFactoryFallback)
        yield


def _whole_number(lowest: int):
    """An argparse type: a whole number of at least ``lowest`` (a usage error otherwise, never a traceback)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {clip(text)}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"expected {lowest} or more, got {clip(value)}")
        return value

    return parse


def _udp_address(text: str) -> str:
    from flightsw.config.semantic import address_problem

    problem = address_problem(text, listening=False)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


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
    hil.add_argument("--seed", type=_whole_number(0), default=None, help="random seed (default: the scenario's)")
    hil.add_argument("--runs", type=_whole_number(1), default=1, help="Monte-Carlo runs with dispersions (in parallel)")
    hil.add_argument("--jobs", type=_whole_number(1), default=None,
                     help="worker processes for --runs (default: CPU count)")
    hil.add_argument("--realtime", action="store_true",
                     help="pace the simulation to the wall clock and open the ground link on UDP")
    hil.add_argument("--udp", type=_udp_address, default="127.0.0.1:14550",
                     help="with --realtime: where to send the ground link (default 127.0.0.1:14550)")
    hil.add_argument("--out", type=Path, default=None, help="write the report, plots, KML and .tlog here")
    hil.add_argument("--log-level", choices=logsetup.LEVELS, default="warning")
    hil.add_argument("--no-progress", action="store_true", help="no progress bar")
    hil.set_defaults(handler=_cmd_hil)

    check = sub.add_parser("check-config", help="validate configuration files and print every error")
    check.add_argument("files", nargs="+", type=Path)
    check.set_defaults(handler=_cmd_check_config)

    safe = sub.add_parser("safe-outputs", help="drive every output line inactive and exit",
                          description="Drive every output line of the board profile inactive.  Only the board "
                                      "profile is read: a flight configuration that is otherwise broken still "
                                      "gives its board by its board: line.")
    where = safe.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="flight configuration (its board profile is used) or board "
                                                   "profile")
    where.add_argument("--board", type=Path, help="board profile")
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

    try:
        with _without_pin_factory_warnings():
            hal = build_hal(config.board)
    except Exception as error:
        if gpio_library_missing(error):
            print(f"error: {GPIO_LIBRARY_HELP}", file=sys.stderr)
            return 2
        raise
    try:
        daemon = Daemon(config, hal, MonotonicClock())
    except KeyFileError as error:
        hal.close()
        from flightsw.config.loader import compose_file, issue_at

        issue = issue_at(compose_file(config.source), config.source, "link.signing.key_file", str(error))
        print(f"error: {issue}", file=sys.stderr)
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

    status = 0
    for path in args.files:
        try:
            issues, kind = check_file(path)
        except Exception as error:  # noqa: BLE001 - the last resort, per file, so the others are still checked
            if os.environ.get("FLIGHTSW_TRACEBACK"):
                raise
            print(f"error: {internal_error_text(error, str(path))}", file=sys.stderr)
            status = EXIT_INTERNAL_ERROR
            continue
        if issues:
            status = status or 1
            for issue in issues:
                print(f"error: {issue}", file=sys.stderr)
        else:
            print(f"ok: {path} ({kind})")
    return status


def _cmd_safe_outputs(args: argparse.Namespace) -> int:
    from flightsw.config.board import BoardConfig
    from flightsw.config.check import board_for_safe_outputs
    from flightsw.config.loader import load_file

    try:
        if args.board is not None:
            board, board_file, unreadable = load_file(args.board, BoardConfig), args.board, []
        else:
            board, board_file, unreadable = board_for_safe_outputs(args.config)
    except ConfigError as error:
        _print_config_error(error)
        return 2
    for issue in unreadable:
        print(f"warning: {issue}", file=sys.stderr)
    if unreadable:
        print(f"warning: {args.config}: using the board profile its board: line names, {board_file}",
              file=sys.stderr)
    from hal.board import safe_outputs

    try:
        with _without_pin_factory_warnings():
            names = safe_outputs(board)
    except Exception as error:
        if gpio_library_missing(error):
            print(f"error: {GPIO_LIBRARY_HELP}", file=sys.stderr)
            return 2
        raise
    print(f"safe: {', '.join(names)} inactive ({board_file})")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from flightsw.docs_gen import write_docs

    stale = write_docs(args.dir, check=args.check)
    for name in stale:
        print(f"{'out of date' if args.check else 'written'}: {args.dir / name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
