"""Harness for the ground link tests (imported by the other ``test_groundlink_*`` files), and its own checks.

The ground station is a real pymavlink ``udpin`` connection on 127.0.0.1; the vehicle's :class:`GroundLink` sends
to it over a real UDP endpoint built from a :class:`GroundLinkConfig`.  Time is a :class:`SimClock` stepped one
20 Hz frame at a time; each frame runs ``rx`` then ``tx`` like the daemon's task table.  Frames the ground sends
are packed by pymavlink ``MAVLink`` objects (unsigned, MAVLink 1, signed with our key or a wrong one) and written
straight to the vehicle's socket.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

os.environ.setdefault("MAVLINK20", "1")  # mavutil ground stations speak MAVLink 2 (needed for signing)

from pymavlink import mavutil  # noqa: E402
from pymavlink.dialects.v20 import common as mavlink  # noqa: E402

from flightsw.clock import SimClock  # noqa: E402
from flightsw.config.flight import GroundLinkConfig, SigningConfig  # noqa: E402
from flightsw.executive import ExecutiveStats  # noqa: E402
from flightsw.flightlogic import CommandResult, Outcome  # noqa: E402
from flightsw.groundlink import GroundLink  # noqa: E402
from flightsw.link.transport import LinkConfig  # noqa: E402
from flightsw.params import ParamDecl, Params  # noqa: E402
from flightsw.phase import Phase  # noqa: E402
from flightsw.state import FlightState  # noqa: E402
from hal.interfaces import GpsFix, PressureReading  # noqa: E402

FRAME_S = 0.05
KEY = bytes(range(1, 33))
WRONG_KEY = bytes(range(101, 133))
GCS_SYSID = 255
GCS_COMPID = 190
SIGNING_EPOCH_S = 1_420_070_400

PARAM_DECLS = (
    ParamDecl("ALT_TARGET", float, 28000.0, 5000.0, 45000.0, "m", "float target"),
    ParamDecl("ALT_KP", float, 0.002, 0.0001, 0.1, "1/s", "outer loop gain"),
    ParamDecl("TRM_MAX_TRIES", int, 3, 1, 10, "", "cutdown attempts"),
    ParamDecl("FLT_MODE", int, 1, 0, 2, "", "flight mode", settable_in=frozenset({Phase.PREFLIGHT})),
    ParamDecl("ALT_BAL_TOTAL", float, 10.0, 0.0, 5000.0, "kg", "ballast carried"),
    ParamDecl("REL_BURN_S", float, 3.0, 0.5, 10.0, "s", "release burn"),
)


# ---------------------------------------------------------------------------------------------- fakes


class FakeLine:
    def __init__(self, name: str) -> None:
        self.name = name
        self.is_active = False


@dataclass
class FakeOutputs:
    release_arm: FakeLine = field(default_factory=lambda: FakeLine("release_arm"))
    cutdown_arm: FakeLine = field(default_factory=lambda: FakeLine("cutdown_arm"))


class FakeBaro:
    def __init__(self, name: str, pressure_pa: float, temperature_c: float = -40.0) -> None:
        self.name = name
        self._reading = PressureReading(pressure_pa, temperature_c, 0.0, True)

    @property
    def reading(self) -> PressureReading:
        return self._reading


class FakeGps:
    name = "gps"

    @property
    def fix(self) -> GpsFix:
        return GpsFix(52.0, 5.0, 1000.0, 5.0, 90.0, 3, 12, 0.9, 1.2, 1.7e9, 0.0, True)


@dataclass
class FakeHal:
    barometers: list = field(default_factory=lambda: [FakeBaro("b1", 101325.0), FakeBaro("b2", 101300.0)])
    power_monitors: list = field(default_factory=lambda: ["pm"])
    thermometers: list = field(default_factory=list)
    gps: object = field(default_factory=FakeGps)
    outputs: FakeOutputs = field(default_factory=FakeOutputs)


class FakeExecutive:
    def __init__(self) -> None:
        self.stats = ExecutiveStats(frames=100, slips=3, load=0.25)
        self.healthy = True

    def tasks_healthy(self) -> bool:
        return self.healthy


class FakeLogic:
    """Records every call; answers with ``results[name]`` (default ACCEPTED)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.results: dict[str, CommandResult] = {}

    def _answer(self, name: str, *args) -> CommandResult:
        self.calls.append((name, *args))
        return self.results.get(name, CommandResult(Outcome.ACCEPTED, f"{name} ok"))

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def terminate(self, reason, now_s, retry=False):
        return self._answer("terminate", reason)

    def arm(self, chain, now_s):
        return self._answer("arm", chain)

    def disarm(self, chain, now_s):
        return self._answer("disarm", chain)

    def fire_release(self, now_s):
        return self._answer("fire_release")

    def ground_go(self, now_s):
        return self._answer("ground_go")

    def pulse(self, valve, duration_s, now_s):
        return self._answer("pulse", valve, duration_s)

    def set_float_target(self, altitude_m, now_s):
        return self._answer("set_float_target", altitude_m)

    def request_phase(self, phase, now_s):
        return self._answer("request_phase", phase)

    def override_preflight(self, now_s):
        return self._answer("override_preflight")


def healthy_state() -> FlightState:
    state = FlightState()
    est = state.estimate
    est.altitude_m, est.altitude_valid = 1000.0, True
    est.vertical_rate_mps, est.vertical_rate_valid = 5.0, True
    est.pressure_pa, est.pressure_valid = 89_875.0, True
    est.latitude_deg, est.longitude_deg, est.gps_altitude_m = 52.0, 5.0, 1001.0
    est.ground_speed_mps, est.course_deg, est.position_valid = 5.0, 90.0, True
    est.fix_type, est.satellites, est.hdop = 3, 12, 0.9
    est.bus_voltage_v, est.current_a, est.power_valid = 12.1, 0.4, True
    state.sensors_healthy = True
    return state


# ---------------------------------------------------------------------------------------------- harness


class Harness:
    """A vehicle (GroundLink + fakes) and a ground station on 127.0.0.1."""

    def __init__(self, tmp_path, *, key: bytes | None = KEY, require_signed: bool = True, simulated: bool = True,
                 high_latency: bool = False, local: bool = False, hal: FakeHal | None = None,
                 on_reboot=None, on_signed_write=None) -> None:
        self.gcs = mavutil.mavlink_connection("udpin:127.0.0.1:0", source_system=GCS_SYSID,
                                              source_component=GCS_COMPID)
        gcs_port = self.gcs.port.getsockname()[1]
        key_file = ""
        if key is not None:
            key_path = tmp_path / "signing.key"
            key_path.write_text(key.hex() + "\n")
            os.chmod(key_path, 0o600)
            key_file = str(key_path)
        self.key_file = key_file
        endpoint = LinkConfig(name="radio", kind="udp", send_to=f"127.0.0.1:{gcs_port}", high_latency=high_latency,
                              local=local)
        self.config = GroundLinkConfig(system_id=1, component_id=1, gcs_system_id=GCS_SYSID,
                                       signing=SigningConfig(key_file=key_file,
                                                             require_signed_commands=require_signed),
                                       endpoints=(endpoint,))
        self.clock = SimClock(start_s=100.0, start_wall_time_s=time.time())
        self.state = healthy_state()
        self.state.boot_s = 100.0
        self.params = Params(PARAM_DECLS)
        self.logic = FakeLogic()
        self.executive = FakeExecutive()
        self.hal = hal if hal is not None else FakeHal()
        self.persisted: list[dict] = []
        self.link = GroundLink(self.config, state=self.state, params=self.params, logic=self.logic,
                               executive=self.executive, hal=self.hal, clock=self.clock, simulated=simulated,
                               on_params_changed=self.persisted.append, on_reboot=on_reboot,
                               on_signed_write=on_signed_write)
        self.vehicle_port = self.link.links[0].endpoint.transport.local_address[1]
        self.received: list = []
        self.signer = self.packer(KEY)
        self.plain = self.packer(None)

    # ------------------------------------------------------------------ ground side

    def packer(self, key: bytes | None, *, timestamp: int | None = None, link_id: int = 0,
               sysid: int = GCS_SYSID) -> mavlink.MAVLink:
        """A pymavlink packer for ground frames, signing with ``key`` when given."""
        mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=GCS_COMPID)
        if key is not None:
            mav.signing.secret_key = key
            mav.signing.sign_outgoing = True
            mav.signing.link_id = link_id
            mav.signing.timestamp = timestamp if timestamp is not None else \
                int((time.time() - SIGNING_EPOCH_S) * 1e5)
        return mav

    def send_raw(self, frame: bytes) -> None:
        self.gcs.port.sendto(frame, ("127.0.0.1", self.vehicle_port))

    def send(self, msg, packer: mavlink.MAVLink | None = None, *, mavlink1: bool = False) -> bytes:
        """Pack ``msg`` (signed with our key unless another packer is given) and send it; returns the frame."""
        packer = packer if packer is not None else self.signer
        frame = bytes(msg.pack(packer, force_mavlink1=mavlink1))
        packer.seq = (packer.seq + 1) % 256
        self.send_raw(frame)
        return frame

    def command(self, command: int, *params: float, confirmation: int = 0, target_system: int = 1,
                target_component: int = 1, packer: mavlink.MAVLink | None = None, mavlink1: bool = False) -> bytes:
        values = list(params) + [0.0] * (7 - len(params))
        return self.send(mavlink.MAVLink_command_long_message(target_system, target_component, command, confirmation,
                                                              *values), packer, mavlink1=mavlink1)

    def command_int(self, command: int, p1: float = 0.0, p2: float = 0.0, p3: float = 0.0, p4: float = 0.0,
                    x: int = 0, y: int = 0, z: float = 0.0, frame: int = 0,
                    packer: mavlink.MAVLink | None = None) -> bytes:
        return self.send(mavlink.MAVLink_command_int_message(1, 1, frame, command, 0, 0, p1, p2, p3, p4, x, y, z),
                         packer)

    def drain(self) -> list:
        """Every message the ground has received since the last drain (also appended to ``received``)."""
        out = []
        while True:
            msg = self.gcs.recv_match(blocking=False)
            if msg is None:
                break
            if msg.get_type() != "BAD_DATA":
                out.append(msg)
        self.received.extend(out)
        return out

    # ------------------------------------------------------------------ vehicle side

    @property
    def now_s(self) -> float:
        return self.clock.now_s()

    def frame(self) -> list:
        """One 20 Hz frame: rx, tx; returns what the ground received."""
        now_s = self.clock.now_s()
        self.link.rx(now_s)
        self.link.tx(now_s)
        self.clock.advance(FRAME_S)
        return self.drain()

    def run(self, seconds: float) -> list:
        out = []
        for _ in range(int(round(seconds / FRAME_S))):
            out += self.frame()
        return out

    def until(self, predicate, *, max_frames: int = 40) -> list:
        """Run frames until a received message satisfies ``predicate``; returns the matches."""
        matches = []
        for _ in range(max_frames):
            matches = [m for m in self.frame() if predicate(m)]
            if matches:
                return matches
        return matches

    def acks(self, command: int, *, max_frames: int = 10) -> list:
        """COMMAND_ACKs for ``command`` received over the next ``max_frames`` frames."""
        out = []
        for _ in range(max_frames):
            out += [m for m in self.frame() if m.get_type() == "COMMAND_ACK" and m.command == command]
        return out

    def ack(self, command: int) -> int:
        """The single ACK result for ``command`` (asserts there is exactly one)."""
        acks = self.acks(command)
        assert len(acks) == 1, f"expected one ACK for {command}, got {acks}"
        return acks[0].result

    def start(self) -> None:
        """First frames: the ground hears the vehicle."""
        self.until(lambda m: m.get_type() == "HEARTBEAT")

    def close(self) -> None:
        self.link.close()
        self.gcs.close()


def of_type(messages: list, name: str) -> list:
    return [m for m in messages if m.get_type() == name]


def statustexts(messages: list) -> list[str]:
    """STATUSTEXT texts with chunked ones joined (by their ``id``), in order of their first chunk."""
    texts: list[str] = []
    chunked: dict[int, int] = {}
    for m in of_type(messages, "STATUSTEXT"):
        if m.id == 0:
            texts.append(m.text)
        elif m.id in chunked:
            texts[chunked[m.id]] += m.text
        else:
            chunked[m.id] = len(texts)
            texts.append(m.text)
    return texts


# ---------------------------------------------------------------------------------------------- own checks


def test_harness_ground_hears_vehicle_and_vehicle_hears_ground(tmp_path):
    h = Harness(tmp_path)
    try:
        h.start()
        h.send(mavlink.MAVLink_heartbeat_message(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 4, 3))
        h.frame()
        assert h.link.counters["rx_frames"] == 1
        assert h.link.counters["sig_good"] == 1
        assert math.isfinite(h.state.link.gcs_heartbeat_s)
    finally:
        h.close()
