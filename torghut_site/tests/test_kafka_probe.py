"""The consumer-group probe's clients are made once per process and cluster and never destroyed:
destroying an AdminClient whose request outlived the probe's deadline tripped a librdkafka
assertion that SIGABRTed a Celery child (seen once in the production-topology test, while the
broker went away); a late answer now lands in a future nobody reads."""

from __future__ import annotations

import socket

import pytest

from torghut_site.kafka import probe


def test_a_probe_that_gives_up_keeps_its_clients_for_the_next_one():
    with socket.socket() as silent:  # accepts, never answers: requests are in flight at the end
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        bootstrap = f"127.0.0.1:{silent.getsockname()[1]}"
        for _ in range(2):
            with pytest.raises(probe.ProbeFailed):
                probe.consumer_group_probe(
                    bootstrap_servers=bootstrap, group="g", topics=("t",), timeout_seconds=0.05
                )
        made = [key for key in probe._clients_made if key[1] == bootstrap]
        assert len(made) == 1  # one pair for both probes, still alive
        admin, reader = probe._clients_made[made[0]]
        assert probe._clients(bootstrap, {}) == (admin, reader)
        assert probe._clients(bootstrap, {"security.protocol": "plaintext"}) != (admin, reader)
