"""The ground link's lower layers: byte transports, MAVLink framing and MAVLink 2 signing.

* :mod:`flightsw.link.transport` -- ``UdpTransport``, ``SerialTransport``, ``LinkConfig``, ``make_transport``;
* :mod:`flightsw.link.endpoint` -- ``Endpoint`` (send / poll MAVLink on one transport) and ``Received``;
* :mod:`flightsw.link.signing` -- ``SignatureVerifier``, ``SigningClock``, ``SigningPolicy``, ``load_key_file``.
"""

from flightsw.link.endpoint import Endpoint, EndpointStats, Received
from flightsw.link.signing import (KeyFileError, SignatureResult, SignatureVerifier, SigningClock, SigningPolicy,
                                   load_key_file, passphrase_to_key)
from flightsw.link.transport import (LinkConfig, SerialTransport, Transport, TransportStats, UdpTransport,
                                     make_transport, parse_host_port)

__all__ = [
    "Endpoint", "EndpointStats", "KeyFileError", "LinkConfig", "Received", "SerialTransport", "SignatureResult",
    "SignatureVerifier", "SigningClock", "SigningPolicy", "Transport", "TransportStats", "UdpTransport",
    "load_key_file", "make_transport", "parse_host_port", "passphrase_to_key",
]
