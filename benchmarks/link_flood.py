"""Flood the ground link with garbage while the daemon flies in real time.

The daemon flies the nominal scenario paced to the wall clock with a UDP link.  A separate process blasts that
port with random bytes and with mutated copies of valid MAVLink 2 frames (commands, parameter sets, heartbeats,
signed and unsigned, with random bit flips, truncations and splices) as fast as it can up to ``--rate-kbps``.
Reported: frames run, slips, task errors, frames the link parsed and dropped, and whether a correctly signed
command still gets through afterwards.  Goals: 0 crashes (task errors), 0 slips.

    python benchmarks/link_flood.py [--seconds 20] [--rate-kbps 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MAVLINK20", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent


def valid_frames(key: bytes) -> list[bytes]:
    from pymavlink.dialects.v20 import common as M

    class Sink:
        def write(self, data: bytes) -> None:
            pass

    frames = []
    for signed in (False, True):
        mav = M.MAVLink(Sink(), srcSystem=255, srcComponent=190)
        if signed:
            mav.signing.secret_key = key
            mav.signing.sign_outgoing = True
            mav.signing.link_id = 5
            mav.signing.timestamp = 1
        for message in (mav.command_long_encode(1, 1, M.MAV_CMD_DO_FLIGHTTERMINATION, 0, 1, 0, 0, 0, 0, 0, 0),
                        mav.command_long_encode(1, 1, M.MAV_CMD_DO_GRIPPER, 0, 1, 0, 0, 0, 0, 0, 0),
                        mav.param_set_encode(1, 1, b"TRM_CEIL_ALT", 1000.0, M.MAV_PARAM_TYPE_REAL32),
                        mav.heartbeat_encode(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, 0),
                        mav.param_request_list_encode(1, 1)):
            frames.append(bytes(message.pack(mav)))
    return frames


def mutate(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(frame)
    choice = rng.random()
    if choice < 0.6:
        for _ in range(rng.randint(1, 4)):
            index = rng.randrange(len(data))
            data[index] ^= 1 << rng.randrange(8)
    elif choice < 0.8:
        data = data[:rng.randrange(1, len(data))]
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    return bytes(data)


def flood(port: int, seconds: float, rate_bps: float, key: bytes, counter) -> None:
    rng = random.Random(7)
    frames = valid_frames(key)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        if sent > rate_bps * elapsed:
            time.sleep(0.001)
            continue
        if rng.random() < 0.5:
            payload = rng.randbytes(rng.randint(1, 280))
        else:
            payload = b"".join(mutate(rng.choice(frames), rng) for _ in range(rng.randint(1, 6)))
        try:
            sender.sendto(payload, ("127.0.0.1", port))
            sent += len(payload)
        except OSError:
            time.sleep(0.001)
    counter.value = sent


def main() -> int:
    from pymavlink import mavutil
    from pymavlink.dialects.v20 import common as M

    from flightsw import logsetup
    from flightsw.link.transport import LinkConfig
    from hil.runner import HilRun
    from hil.scenario import load_scenario

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate-kbps", type=float, default=2000.0, help="flood rate, kilobytes per second")
    args = parser.parse_args()
    logsetup.configure("silent")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scenario = load_scenario(ROOT / "config" / "hil" / "nominal.yaml")
    with tempfile.TemporaryDirectory() as work_dir:
        run = HilRun(scenario, work_dir=Path(work_dir), pace=1.0,
                     links=(LinkConfig(name="gcs", kind="udp", listen=f"127.0.0.1:{port}"),))
        daemon = run.daemon
        frames = int(args.seconds * 20)
        sent = multiprocessing.Value("q", 0)
        wrong_key = bytes(range(32))
        flooder = multiprocessing.Process(target=flood, args=(port, args.seconds, args.rate_kbps * 1000,
                                                              wrong_key, sent))
        flooder.start()
        daemon.run(max_frames=frames)
        flooder.join()
        stats = daemon.executive.stats
        task_errors = sum(task.errors for task in daemon.executive.task_stats.values())
        link = daemon.link.counters
        terminated_by_flood = daemon.state.latches.termination_fired

        gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=255, source_component=190,
                                         dialect="common")
        gcs.setup_signing(run.key, sign_outgoing=True, link_id=9)
        # Like a ground station, retry (confirmation + 1) every second until acknowledged: a datagram sent while
        # the daemon's socket buffer is still full of flood is dropped by the kernel.
        accepted_after = None
        for frame in range(400):
            if frame % 20 == 0:
                gcs.mav.command_long_send(1, 1, M.MAV_CMD_DO_SET_ACTUATOR, frame // 20, 0, 0.5, 0, 0, 0, 0, 0)
            daemon.run(max_frames=1)
            while (message := gcs.recv_match(blocking=False)) is not None:
                if message.get_type() == "COMMAND_ACK" and message.result == M.MAV_RESULT_ACCEPTED:
                    accepted_after = accepted_after or frame + 1
            if accepted_after:
                break
        daemon.shutdown()
        gcs.close()
    endpoint = next(link.endpoint for link in daemon.link.links if link.name == "gcs").stats
    print(f"link flood: {sent.value / 1e6:.1f} MB of random and mutated frames in {args.seconds:g} s "
          f"({sent.value / args.seconds / 1e3:.0f} kB/s offered) at a real-time daemon")
    print(f"  frames run {stats.frames}, slips {stats.slips}, task errors (crashes) {task_errors}, "
          f"load max {stats.load_max:.2f}")
    print(f"  link: frames parsed {endpoint.frames_received}, bad CRC {endpoint.bad_crc}, malformed "
          f"{endpoint.malformed}, unknown {endpoint.unknown_msg}, signature bad {endpoint.sig_bad}, "
          f"unsigned {endpoint.unsigned}, handler errors {link['handler_errors']}")
    after = f"accepted after {accepted_after} frames" if accepted_after else "NOT accepted"
    print(f"  anything fired by the flood: {'YES' if terminated_by_flood else 'no'}; a signed command afterwards "
          f"{after}")
    print(f"goals 0 crashes, 0 slips: {'met' if task_errors == 0 and stats.slips == 0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
