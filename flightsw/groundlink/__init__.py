"""The MAVLink 2 ground link logic: identity, telemetry, parameters, commands and the signing policy.

* :mod:`.link` -- :class:`GroundLink`, the two executive tasks (``rx``/``tx``) and the signing policy;
* :mod:`.identity` -- HEARTBEAT, AUTOPILOT_VERSION, HIGH_LATENCY2;
* :mod:`.telemetry` -- the table of streamed messages and the per-link scheduler;
* :mod:`.parameters` -- the parameter protocol;
* :mod:`.commands` / :mod:`.command_table` / :mod:`.progress` -- the command dispatcher and its table;
* :mod:`.services` -- TIMESYNC, missions (none), FTP (refused), SETUP_SIGNING;
* :mod:`.statustext` -- operator events as chunked STATUSTEXT.

The byte transports, framing and signature checks below this are in :mod:`flightsw.link`.
"""

from flightsw.groundlink.command_table import COMMANDS
from flightsw.groundlink.commands import CommandSpec
from flightsw.groundlink.link import GroundLink, LinkState
from flightsw.groundlink.telemetry import TELEMETRY, TelemetryMessage

__all__ = ["COMMANDS", "CommandSpec", "GroundLink", "LinkState", "TELEMETRY", "TelemetryMessage"]
