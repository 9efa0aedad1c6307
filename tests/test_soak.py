"""The soak (tests/soak.py) in short: twenty seconds of mixed, invalid and fault-injected traffic.
`make soak` runs the three-minute one whose figures docs/reliability.md gives."""

from __future__ import annotations

import os
import socket

from tests.fault_server import FaultServer
from tests.soak import descriptors, soak


def test_a_short_soak_has_no_problem() -> None:
    figures = soak(seconds=20, rate=25)
    assert figures.requests == 500
    assert figures.feedback_sent > 20 and figures.answers["fault 412"] > 0 and figures.answers["invalid 400"] > 0
    assert figures.problems() == []


def test_connections_to_the_fhir_server_are_counted_apart_from_other_descriptors() -> None:
    with FaultServer({}).running() as fhir, socket.create_connection(("127.0.0.1", fhir.port)):
        others, pooled = descriptors(os.getpid(), fhir.port)
        assert pooled == 1
        with open(os.devnull, "rb"):
            assert descriptors(os.getpid(), fhir.port) == (others + 1, 1)
