"""Acceptance of issue 20 (1): three halls, their brokers, the regional broker and PostgreSQL, all real.

A hall cut off (bridge down, then the region's broker killed) for thousands of events catches up
with every event exactly once and in order; a region restart mid-ingest loses and doubles nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hall_devices.contract import route
from tests.region.rig import RegionRig
from tests.support import probe, wait_until


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, region_db: str) -> Iterator[RegionRig]:
    rig = RegionRig.build(tmp_path_factory.mktemp("region"), region_db, ["h1", "h2", "h3"])
    rig.start_service()
    try:
        yield rig
    finally:
        rig.stop()


def test_every_hall_reaches_the_region(rig: RegionRig) -> None:
    for hall in rig.halls:
        hall.issue(50)
    wait_until(lambda: all(h.head >= 50 for h in rig.halls), 20, "tickets issued")
    rig.wait_caught_up(30)
    assert rig.check_exactly_once_in_order() >= 150


def test_a_hall_cut_off_for_thousands_of_events_catches_up_once_and_in_order(rig: RegionRig) -> None:
    rig.wait_caught_up()
    cut, others = rig.halls[0], rig.halls[1:]
    resends = probe(rig.broker.port, "monitor", None,
                    subscribe=[route("region_resend_out").filter(site=cut.entry.hall_id)])
    try:
        cut.relay.cut()  # the WAN is down: the hall's broker queues what the bridge cannot send
        before = cut.head
        cut.issue(1200)
        for hall in others:
            hall.issue(100)
        # The hall never waits for the region: it goes on issuing while cut off.
        wait_until(lambda: cut.head >= before + 1200, 30, "tickets issued while cut off")
        rig.kill_broker(rig.broker.process)  # then the region's broker dies too
        cut.issue(1200)
        wait_until(lambda: cut.head >= before + 2400, 30, "tickets issued while the region is down")
        # The hall's own broker loses power with its queue for the region: only the store has them.
        rig.kill_broker(cut.broker.process)
        cut.broker.process.start()
        cut.issue(300)
        wait_until(lambda: cut.head >= before + 2700, 60, "tickets issued after the hall broker restart")
        rig.broker.process.start()
        cut.relay.restore()
        rig.wait_caught_up(90)
        # What the hall's broker lost was asked for again from the hall's store.
        resends.expect(lambda m: True, timeout_s=1)
    finally:
        resends.stop()
    assert cut.head - before >= 2700
    assert rig.check_exactly_once_in_order() == sum(h.head for h in rig.halls)


def test_a_region_restart_mid_ingest_loses_and_doubles_nothing(rig: RegionRig) -> None:
    rig.wait_caught_up()
    stored = sum(rig.applied().values())
    for hall in rig.halls:
        hall.issue(800)
    wait_until(lambda: sum(rig.applied().values()) > stored, 30, "ingest under way")
    rig.kill_service()
    for hall in rig.halls:
        hall.issue(200)
    rig.start_service()
    rig.wait_caught_up(90)
    assert rig.check_exactly_once_in_order() == sum(h.head for h in rig.halls)
