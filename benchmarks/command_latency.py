"""Ground command to actuator: COMMAND_LONG -> output-line edge, and -> COMMAND_ACK, counted in frames.

The daemon flies the nominal scenario in lockstep with a UDP link; a pymavlink ground station sends a signed
DO_SET_ACTUATOR vent pulse (0.5 s) over the real socket between two frames, then the benchmark runs one frame at a
time until the vent valve's pin (read from the emulated GPIO, below the driver) goes active and the COMMAND_ACK
arrives.  Frame 1 is the first frame after the command was sent.  Repeated for many commands; prints p50 / p99 /
max of both, next to the reference of one frame.  Goal: edge <= 1 frame at p99.

    python benchmarks/command_latency.py [--commands 200]
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MAVLINK20", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymavlink import mavutil  # noqa: E402
from pymavlink.dialects.v20 import common as M  # noqa: E402

from flightsw import logsetup  # noqa: E402
from flightsw.link.transport import LinkConfig  # noqa: E402
from hil.runner import HilRun  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MAX_FRAMES = 40


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args()
    logsetup.configure("silent")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scenario = load_scenario(ROOT / "config" / "hil" / "nominal.yaml")
    with tempfile.TemporaryDirectory() as work_dir:
        run = HilRun(scenario, work_dir=Path(work_dir),
                     links=(LinkConfig(name="gcs", kind="udp", listen=f"127.0.0.1:{port}"),))
        gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=255, source_component=190,
                                         dialect="common")
        gcs.setup_signing(run.key, sign_outgoing=True, link_id=9)
        gcs.mav.heartbeat_send(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, M.MAV_STATE_ACTIVE)
        daemon = run.daemon
        daemon.run(max_frames=40)
        edges, acks = [], []
        for _ in range(args.commands):
            while gcs.recv_match(blocking=False) is not None:
                pass
            gcs.mav.command_long_send(1, 1, M.MAV_CMD_DO_SET_ACTUATOR, 0, 0, 0.5, 0, 0, 0, 0, 0)
            edge = ack = None
            for frame in range(1, MAX_FRAMES + 1):
                daemon.run(max_frames=1)
                if edge is None and run.board.line_active("vent_valve"):
                    edge = frame
                while ack is None and (message := gcs.recv_match(blocking=False)) is not None:
                    if message.get_type() == "COMMAND_ACK" and message.command == M.MAV_CMD_DO_SET_ACTUATOR:
                        ack = frame
                if edge is not None and ack is not None:
                    break
            edges.append(edge if edge is not None else math.inf)
            acks.append(ack if ack is not None else math.inf)
            daemon.run(max_frames=20)  # let the pulse end before the next command
        daemon.shutdown()
        gcs.close()
    print(f"command latency over {args.commands} signed DO_SET_ACTUATOR commands on UDP, in 50 ms frames "
          "(frame 1 = the first frame after sending; reference: 1 frame)")
    for name, values in (("COMMAND_LONG -> valve line edge", edges), ("COMMAND_LONG -> COMMAND_ACK", acks)):
        print(f"  {name:<32} p50 {percentile(values, 0.5):g}  p99 {percentile(values, 0.99):g}  "
              f"max {max(values):g} frames")
    print(f"goal edge <= 1 frame at p99: {'met' if percentile(edges, 0.99) <= 1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
