"""The event loops' one heap of timers (labserver.servers.nonblocking.Timers).

Each client has one alarm: the end of its /sleep, or its deadline. A deadline
that moves later (every request moves it) must not fire at its old time; an
alarm that moves earlier (a /sleep, a lingering close) must fire at its new
time; a cancelled client never comes up; and however many times clients come
and go, the heap keeps no more than about twice the entries that count.
"""

import math

from labserver.servers.nonblocking import Timers


class Alarmed:
    """What Timers needs of a client: its alarm, and where it is armed."""

    def __init__(self, alarm):
        self.alarm = alarm
        self.armed = math.inf


def test_clients_come_up_when_their_alarm_has_come():
    timers = Timers()
    early, late = Alarmed(1.0), Alarmed(2.0)
    timers.arm(late)
    timers.arm(early)
    assert timers.timeout(0.0) == 1.0
    assert timers.due(0.5) == []
    assert timers.due(1.0) == [early]
    assert timers.due(5.0) == [late]
    assert timers.due(10.0) == [] and timers.timeout(10.0) is None


def test_a_deadline_moved_later_comes_up_at_its_new_time_only():
    timers = Timers()
    client = Alarmed(1.0)
    timers.arm(client)
    client.alarm = 3.0  # a request came: its deadline moved
    timers.arm(client)  # nothing new to push: the old entry will find it moved
    assert len(timers.heap) == 1
    assert timers.due(1.5) == []  # the old entry came up, and was put back at 3.0
    assert timers.timeout(1.5) == 1.5
    assert timers.due(3.0) == [client]


def test_an_alarm_moved_earlier_comes_up_at_its_new_time_once():
    timers = Timers()
    client = Alarmed(15.0)  # an idle deadline
    timers.arm(client)
    client.alarm = 0.05  # then a /sleep of 50 ms
    timers.arm(client)
    assert timers.due(0.05) == [client]
    assert timers.due(20.0) == []  # its old entry no longer counts


def test_a_cancelled_client_never_comes_up():
    timers = Timers()
    client = Alarmed(1.0)
    timers.arm(client)
    timers.cancel(client)
    assert timers.due(2.0) == []


def test_the_heap_stays_small_however_many_clients_come_and_go():
    timers = Timers()
    staying = [Alarmed(100.0 + n) for n in range(10)]
    for client in staying:
        timers.arm(client)
    for n in range(10_000):  # short connections: armed, then closed before their deadline
        passing = Alarmed(50.0 + n * 1e-3)
        timers.arm(passing)
        timers.cancel(passing)
        assert len(timers.heap) <= 2 * timers.live + 64 + 1
    assert timers.due(200.0) == staying  # and the ones that stayed still come up, in order
