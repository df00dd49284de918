"""The small protocols a ground station expects an autopilot to answer at connect.

* TIMESYNC: a request (``tc1`` == 0) is answered at once with ``tc1`` = our flight-clock time in ns and ``ts1``
  echoed; responses to requests we never make are ignored.  Not answered on high-latency links (ground stations
  poll it every few seconds, which a satellite link cannot afford).
* Missions: we fly no missions.  MISSION_REQUEST_LIST answers MISSION_COUNT 0 for whatever mission type was asked;
  an upload (MISSION_COUNT) is refused with MISSION_ACK UNSUPPORTED; MISSION_CLEAR_ALL is acknowledged (there is
  nothing to clear).
* MAVLink FTP (FILE_TRANSFER_PROTOCOL): not offered (the FTP capability bit is clear), but QGroundControl may still
  ask for files at connect, so every request gets an immediate NAK instead of a timeout: TerminateSession and
  ResetSessions are ACKed (there are no sessions), writes (create, write, remove, mkdir, rmdir, open for writing,
  truncate, rename) get FileProtected, everything else UnknownCommand.
* SETUP_SIGNING: with a key installed, accepted only when signed with that key (a GOOD signature, whatever the
  link); with no key, only on a link configured ``local: true`` and only in PREFLIGHT
  (:func:`setup_signing_refusal`).  The new key replaces the old on every link at once, our timestamp moves to at
  least the one given, and the key is written to the configured ``key_file`` (hex, mode 600, atomic rename) so it
  survives a restart.  An all-zero key (a request to switch signing off) is refused:
  signing is switched off by removing ``key_file`` from the configuration.
* REQUEST_DATA_STREAM: ignored (counted).  Rates are set per message with SET_MESSAGE_INTERVAL; mapping the old
  stream groups would let MAVProxy's default ``streamrate`` of 4 Hz blow the radio's budget.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import common as mavlink

from flightsw.link.signing import SignatureResult, SigningPolicy
from flightsw.phase import Phase

if TYPE_CHECKING:
    from flightsw.groundlink.link import GroundLink, LinkState
    from flightsw.link.endpoint import Received

FTP_PAYLOAD_BYTES = 251
FTP_OP_TERMINATE_SESSION = 1
FTP_OP_RESET_SESSIONS = 2
FTP_WRITE_OPS = frozenset({6, 7, 8, 9, 10, 11, 12, 13})  # create, write, remove, mkdir, rmdir, open-wo, trunc, mv
FTP_OP_ACK = 128
FTP_OP_NAK = 129
FTP_ERR_UNKNOWN_COMMAND = 7
FTP_ERR_FILE_PROTECTED = 9


def ftp_reply(request_payload: list[int] | bytes) -> list[int]:
    """The FTP reply payload (251 bytes) to a request payload: header fields per the MAVLink FTP spec."""
    request = bytes(request_payload)[:FTP_PAYLOAD_BYTES].ljust(FTP_PAYLOAD_BYTES, b"\x00")
    seq = int.from_bytes(request[0:2], "little")
    session, opcode = request[2], request[3]
    reply = bytearray(FTP_PAYLOAD_BYTES)
    reply[0:2] = ((seq + 1) & 0xFFFF).to_bytes(2, "little")
    reply[2] = session
    reply[5] = opcode  # req_opcode
    if opcode in (FTP_OP_TERMINATE_SESSION, FTP_OP_RESET_SESSIONS):
        reply[3] = FTP_OP_ACK
        reply[4] = 0
    else:
        reply[3] = FTP_OP_NAK
        reply[4] = 1  # size: one error byte
        reply[12] = FTP_ERR_FILE_PROTECTED if opcode in FTP_WRITE_OPS else FTP_ERR_UNKNOWN_COMMAND
    return list(reply)


class Services:
    """Handlers for TIMESYNC, the mission protocol, FTP, SETUP_SIGNING and REQUEST_DATA_STREAM."""

    def __init__(self, link: GroundLink) -> None:
        self.link = link
        self.timesync_answered = 0
        self.mission_answered = 0
        self.ftp_naks = 0
        self.data_stream_requests_ignored = 0
        self.signing_setups = 0
        self.signing_setups_refused = 0

    def _for_us(self, msg) -> bool:
        return msg.target_system in (0, self.link.system_id) and msg.target_component in (0, self.link.component_id)

    def timesync(self, state: LinkState, rx: Received, now_s: float) -> None:
        msg = rx.msg
        if msg.tc1 != 0 or state.high_latency:
            return
        self.timesync_answered += 1
        self.link.send_on(state, mavlink.MAVLink_timesync_message(int(now_s * 1e9), msg.ts1))

    def mission_request_list(self, state: LinkState, rx: Received, now_s: float) -> None:
        msg = rx.msg
        if not self._for_us(msg):
            return
        self.mission_answered += 1
        self.link.send_on(state, mavlink.MAVLink_mission_count_message(
            rx.msg.get_srcSystem(), rx.msg.get_srcComponent(), 0, msg.mission_type))

    def mission_upload(self, state: LinkState, rx: Received, now_s: float) -> None:
        msg = rx.msg
        if not self._for_us(msg):
            return
        self.mission_answered += 1
        self.link.send_on(state, mavlink.MAVLink_mission_ack_message(
            msg.get_srcSystem(), msg.get_srcComponent(), mavlink.MAV_MISSION_UNSUPPORTED, msg.mission_type))

    def mission_clear_all(self, state: LinkState, rx: Received, now_s: float) -> None:
        msg = rx.msg
        if not self._for_us(msg):
            return
        self.mission_answered += 1
        self.link.send_on(state, mavlink.MAVLink_mission_ack_message(
            msg.get_srcSystem(), msg.get_srcComponent(), mavlink.MAV_MISSION_ACCEPTED, msg.mission_type))

    def file_transfer(self, state: LinkState, rx: Received, now_s: float) -> None:
        msg = rx.msg
        if msg.target_system not in (0, self.link.system_id):
            return
        if msg.target_component not in (0, self.link.component_id):
            return
        self.ftp_naks += 1
        self.link.send_on(state, mavlink.MAVLink_file_transfer_protocol_message(
            0, msg.get_srcSystem(), msg.get_srcComponent(), ftp_reply(msg.payload)))

    def request_data_stream(self, state: LinkState, rx: Received, now_s: float) -> None:
        self.data_stream_requests_ignored += 1

    def setup_signing(self, state: LinkState, rx: Received, now_s: float) -> None:
        msg = rx.msg
        if msg.target_system != self.link.system_id:
            return
        refusal = setup_signing_refusal(self.link.signing is not None, rx.signature, state.local,
                                        self.link.view.phase)
        if refusal:
            self.signing_setups_refused += 1
            self.link.refuse_unsigned(f"SETUP_SIGNING refused on link {state.name}: {refusal}")
            return
        key = bytes(msg.secret_key)
        if len(key) != 32 or not any(key):
            self.signing_setups_refused += 1
            self.link.statustext("warning", "SETUP_SIGNING refused: an all-zero key would switch signing off; "
                                            "remove key_file from the configuration instead")
            return
        old = self.link.signing
        policy = SigningPolicy.create(key, wall_clock=self.link.clock.wall_time_s)
        policy.clock.observe(max(int(msg.initial_timestamp), old.clock.current if old is not None else 0))
        self.link.install_signing(policy)
        self.signing_setups += 1
        path = self.link.config.signing.key_file
        if not path:
            self.link.statustext("warning", "signing key installed for this run only: no key_file configured")
            return
        try:
            write_key_file(path, key)
        except OSError as error:
            self.link.statustext("error", f"signing key installed but not saved: {error.strerror or error}")
            return
        self.link.statustext("notice", "signing key installed and saved")


def setup_signing_refusal(key_installed: bool, signature: SignatureResult, local: bool, phase: Phase) -> str:
    """Why a SETUP_SIGNING may not change the key ("" when it may).  With a key installed, only its holder may
    replace it: the frame must carry a GOOD signature with that key, on any link.  With none, anyone who can
    reach the link could install one, so only a local (wired) link, and only before launch."""
    if key_installed:
        return "" if signature is SignatureResult.GOOD else "not signed with the current key"
    if not local:
        return "not a local link"
    if phase is not Phase.PREFLIGHT:
        return f"no key is installed and the phase is {phase.name}, not PREFLIGHT"
    return ""


def write_key_file(path: str, key: bytes) -> None:
    """Write ``key`` as 64 hex characters to ``path`` with mode 600, replacing it atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".signing-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except OSError:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
