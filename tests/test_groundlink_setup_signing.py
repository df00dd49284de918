"""SETUP_SIGNING: who may install a new signing key.

With a key installed, only its holder may replace it: the request must carry a GOOD signature with the current key
(on any link; a local link or ``require_signed_commands: false`` does not excuse an unsigned one).  With no key,
a key may be installed only over a link configured ``local`` and only in PREFLIGHT.  Over the real UDP link of the
ground link harness, as a ground station would send it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from pymavlink.dialects.v20 import common as mavlink
from test_groundlink_harness import KEY, SIGNING_EPOCH_S, WRONG_KEY, Harness

from flightsw.groundlink.services import setup_signing_refusal
from flightsw.link.signing import SignatureResult, load_key_file
from flightsw.phase import Phase

ROOT = Path(__file__).resolve().parent.parent
NEW_KEY = bytes(range(200, 232))
USER_1 = mavlink.MAV_CMD_USER_1


def now_timestamp() -> int:
    return int((time.time() - SIGNING_EPOCH_S) * 1e5)


def setup_signing(h: Harness, key: bytes = NEW_KEY, packer=None) -> None:
    h.send(mavlink.MAVLink_setup_signing_message(1, 1, list(key), now_timestamp()), packer)
    h.run(0.3)


def accepts(h: Harness, key: bytes) -> bool:
    """Whether a write signed with ``key`` is carried out now."""
    h.command(USER_1, packer=h.packer(key))
    return h.ack(USER_1) == mavlink.MAV_RESULT_ACCEPTED


@pytest.fixture
def harness(tmp_path):
    made = []

    def make(**options) -> Harness:
        h = Harness(tmp_path, **options)
        made.append(h)
        h.start()
        return h

    yield make
    for h in made:
        h.close()


@pytest.mark.parametrize("local", [False, True], ids=["radio", "local"])
@pytest.mark.parametrize("sender", ["unsigned", "wrong key"])
def test_with_a_key_an_unsigned_or_wrongly_signed_setup_is_refused(harness, local, sender):
    """The reported attack: an unsigned SETUP_SIGNING on a local link replaced the key."""
    h = harness(local=local)
    setup_signing(h, packer=h.plain if sender == "unsigned" else h.packer(WRONG_KEY))
    assert load_key_file(h.key_file) == KEY
    assert h.link.counters["signing_setups_refused"] == 1
    assert accepts(h, KEY) and not accepts(h, NEW_KEY)


def test_with_a_key_an_unsigned_setup_is_refused_even_when_signing_is_not_required(harness):
    h = harness(local=True, require_signed=False)
    setup_signing(h, packer=h.plain)
    assert load_key_file(h.key_file) == KEY


@pytest.mark.parametrize("local", [False, True], ids=["radio", "local"])
def test_with_a_key_a_setup_signed_with_it_replaces_and_saves_the_key(harness, local):
    h = harness(local=local)
    setup_signing(h)  # signed with the current key
    assert load_key_file(h.key_file) == NEW_KEY
    assert os.stat(h.key_file).st_mode & 0o077 == 0
    assert not accepts(h, KEY) and accepts(h, NEW_KEY)


def test_an_all_zero_key_is_refused_even_when_signed(harness):
    h = harness(local=True)
    setup_signing(h, key=bytes(32))
    assert load_key_file(h.key_file) == KEY and accepts(h, KEY)


def test_without_a_key_a_local_link_in_preflight_may_install_one(harness):
    h = harness(key=None, local=True)
    setup_signing(h, packer=h.plain)
    assert h.link.signing is not None and h.link.signing.key == NEW_KEY
    assert accepts(h, NEW_KEY) and not accepts(h, WRONG_KEY)


def test_without_a_key_a_radio_link_may_not(harness):
    h = harness(key=None, local=False)
    setup_signing(h, packer=h.plain)
    assert h.link.signing is None and h.link.counters["signing_setups_refused"] == 1


def test_without_a_key_a_local_link_may_not_after_launch(harness):
    h = harness(key=None, local=True)
    h.state.latches.phase = Phase.ASCENT
    setup_signing(h, packer=h.plain)
    assert h.link.signing is None and h.link.counters["signing_setups_refused"] == 1


@pytest.mark.parametrize("key_installed, signature, local, phase, refused", [
    (True, SignatureResult.GOOD, False, Phase.FLOAT, False),
    (True, SignatureResult.UNSIGNED, True, Phase.PREFLIGHT, True),
    (True, SignatureResult.BAD_SIGNATURE, True, Phase.PREFLIGHT, True),
    (True, SignatureResult.REPLAY, True, Phase.PREFLIGHT, True),
    (False, SignatureResult.UNSIGNED, True, Phase.PREFLIGHT, False),
    (False, SignatureResult.NOT_CHECKED, True, Phase.PREFLIGHT, False),
    (False, SignatureResult.UNSIGNED, False, Phase.PREFLIGHT, True),
    (False, SignatureResult.UNSIGNED, True, Phase.ASCENT, True),
    (False, SignatureResult.UNSIGNED, True, Phase.LANDED, True),
])
def test_setup_signing_rule(key_installed, signature, local, phase, refused):
    assert bool(setup_signing_refusal(key_installed, signature, local, phase)) is refused


@pytest.mark.parametrize("config", sorted((ROOT / "config").glob("*.yaml")), ids=lambda path: path.name)
def test_shipped_configs_mark_no_network_link_local(config):
    endpoints = yaml.safe_load(config.read_text())["link"]["endpoints"]
    assert not [link for link in endpoints if link.get("kind", "udp") == "udp" and link.get("local")]
