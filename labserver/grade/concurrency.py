"""The concurrency rows, the point of the lecture: nobody waits for somebody else.

A server that serves one client at a time can pass every other row. It must
fail these, so each holds connections open the way real clients do and asks
whether everybody else is still served:

* idle connections: a browser opens connections before it needs them and
  keeps them open after an answer (keep-alive);
* a slow client: a phone on a bad network sends its headers a byte at a time;
* many clients downloading the largest file at once (measured with
  labserver.load), while two idle connections are open.

A one-at-a-time server blocks in recv() on the first held connection, and
nobody else gets an answer until that client leaves: lesson 01's lesson.

Thresholds are generous so that a busy machine costs nobody points: an
answer within QUICK seconds (a concurrent server answers in milliseconds, a
one-at-a-time server not at all while a connection is held), and a
measurement that misses is taken a second time before the row fails.
"""

import select
import threading
import time
from contextlib import ExitStack

from .client import Closed, Failed, describe_error

QUICK = 2.0  # seconds an answer may take while other connections are held open
OTHERS = 5  # requests that must be answered meanwhile
IDLE = 4  # silent connections, and as many keep-alive ones idle after one answer
HOLD = 1.5  # seconds the held connections stay idle before they ask for a page themselves
SLOW_BYTE_EVERY = 0.5  # seconds between the slow client's bytes
SLOW_BYTES = 6  # header bytes it trickles (3 s) before it sends the rest of its request
SERVED_WHILE_SLOW = 3  # answers others must get while it trickles
LOAD_IDLE = 2  # idle connections open while many clients download
MAX_GAP = 1.0  # seconds a downloading client may wait without a byte (a dropped SYN alone costs 1 s)
FAIRNESS = 0.8  # lowest Jain's index (1.0: every client got the same bytes) that passes


def idle_connections(target):
    """Connections that stay idle do not hold up the others: IDLE keep-alive
    clients (one answer each, then quiet) and IDLE that never say a word stay
    open while OTHERS requests on new connections are each answered within
    QUICK s; then every held connection asks for a page and is answered.
    A thread per connection, a pool fed by a selector or an event loop pass;
    one thread serving one client at a time, or a pool whose every worker is
    held by an idle connection, cannot."""
    with ExitStack() as held:
        kept = []
        for number in range(1, IDLE + 1):
            conn = held.enter_context(target.connect(QUICK))
            try:
                conn.send(target.request("GET", "/about.html"), "GET")
                if conn.response().keep_alive:
                    kept.append(conn)
            except Failed as error:
                raise Failed(f"keep-alive client {number} of {IDLE} got no answer while the {number - 1} before "
                             f"it kept their connections open: {error}") from None
        silent = [held.enter_context(target.connect(QUICK)) for _ in range(IDLE)]
        times = served_meanwhile(target, f"{len(kept)} keep-alive and {IDLE} silent connections were open")
        for number, conn in enumerate(silent + kept, 1):
            try:
                conn.send(target.request("GET", "/about.html"), "GET")
                status = conn.response().status
            except (Failed, OSError) as error:
                if conn in kept and isinstance(error, (Closed, OSError)):
                    continue  # a server may close an idle keep-alive connection: the client asks again
                raise Failed(f"every held connection should be answered at the end; held connection {number} "
                             f"(idle for {HOLD:g} s): {describe_error(error)}") from None
            if status != 200:
                raise Failed(f"held connection {number}: expected 200 for /about.html, got {status}")
    return (f"{OTHERS} answers in {min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms while {len(kept) + IDLE} "
            f"connections stayed open; the held ones answered afterwards")


def slow_client(target):
    """A slow client is served, without holding up the others: its request
    line comes at once, then a header byte every 0.5 s for 3 s, then the rest.
    While it is still sending, other clients must get answers (at least
    SERVED_WHILE_SLOW, each within QUICK s); the server must not answer or
    close before the slow request is complete, and must answer it then. A
    server that reads one recv() as the whole request, or serves one client
    at a time, fails."""
    data = target.request("GET", "/index.html")
    start = data.index(b"\r\n") + 2
    with target.connect() as slow:
        slow.send(data[:start], "GET")
        trickle = Trickle(slow, data[start:start + SLOW_BYTES])
        trickle.start()
        times, misses = [], []
        while trickle.is_alive():
            begin = time.monotonic()
            try:
                with target.connect(QUICK) as conn:
                    conn.send(target.request("GET", "/index.html"), "GET")
                    if conn.response().status == 200 and trickle.is_alive():
                        times.append(time.monotonic() - begin)
            except (Failed, OSError) as error:
                misses.append(describe_error(error))
            time.sleep(0.2)  # a handful of requests is enough: this is not a load test
        trickle.join()
        if trickle.early or readable(slow.sock):
            raise Failed(f"the server answered (or closed) the slow client after {start + trickle.sent} of "
                         f"{len(data)} bytes: a request ends with an empty line, however slowly it comes")
        if len(times) < SERVED_WHILE_SLOW:
            raise Failed(f"expected {SERVED_WHILE_SLOW} or more answers (each within {QUICK:g} s) while a client "
                         f"sent a header byte every {SLOW_BYTE_EVERY:g} s; got {len(times)}"
                         + (f" ({misses[0]})" if misses else ""))
        slow.send(data[start + SLOW_BYTES:])
        try:
            response = slow.response()
        except Failed as error:
            raise Failed(f"the slow client's request, once complete, got no answer: {error}") from None
        if response.status != 200 or response.body != target.files["/index.html"]:
            raise Failed(f"the slow client expected 200 and index.html, got {response.describe()}")
    return (f"{len(times)} answers in {min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms while a client sent a "
            f"byte every {SLOW_BYTE_EVERY:g} s; it was answered too")


class Trickle(threading.Thread):
    """Sends `data` a byte every SLOW_BYTE_EVERY s, unless the server speaks (or closes) first."""

    def __init__(self, conn, data):
        super().__init__(name="labserver-grade-trickle", daemon=True)
        self.conn, self.data = conn, data
        self.sent, self.early = 0, False

    def run(self):
        for byte in self.data:
            time.sleep(SLOW_BYTE_EVERY)
            if readable(self.conn.sock):
                self.early = True
                return
            try:
                self.conn.send(bytes([byte]))
            except OSError:
                self.early = True  # closed by the server
                return
            self.sent += 1


def readable(sock):
    return bool(select.select([sock], [], [], 0)[0])


def served_meanwhile(target, while_what, count=OTHERS):
    """`count` GET /index.html on new connections, spread over HOLD seconds, each
    answered within QUICK s (a late one is tried once more); their times."""
    times = []
    for number in range(1, count + 1):
        for attempt in (1, 2):
            begin = time.monotonic()
            try:
                with target.connect(QUICK) as conn:
                    conn.send(target.request("GET", "/index.html"), "GET")
                    response = conn.response()
                break
            except (Failed, OSError) as error:
                if attempt == 2:
                    raise Failed(f"expected every answer within {QUICK:g} s while {while_what}; request {number}"
                                 f" of {count}, tried twice: {describe_error(error)}") from None
        if response.status != 200:
            raise Failed(f"request {number} of {count}: expected 200, got {response.describe()}")
        times.append(time.monotonic() - begin)
        if count > 1:
            time.sleep(HOLD / count)
    return times


# Many clients on the largest file, measured with labserver.load.

def many_clients_progress(target):
    """Many clients downloading the largest file at once all make progress:
    each finishes downloads and none waits more than MAX_GAP s for a byte,
    while LOAD_IDLE idle connections are open. Lesson 08's 1000 clients on
    one big file, small."""
    result = load(target, ok=lambda r: not progress_problem(target, r))
    problem = progress_problem(target, result)
    if problem:
        raise Failed(problem)
    finished = result.per_client_requests
    return (f"{target.clients} clients, {result.requests} downloads, each client {min(finished)} or more, "
            f"longest wait without a byte {result.max_gap_ms / 1000:.2f} s")


def many_clients_fair(target):
    """...and share the bandwidth fairly (Jain's index of the bytes each client
    got >= FAIRNESS): a server that serves its favourite connection first
    starves the rest, even when the total looks fine."""
    result = load(target, ok=lambda r: fairness_problem(r) is None)
    problem = fairness_problem(result)
    if problem:
        raise Failed(problem)
    return f"Jain's index {result.fairness:.2f}: {shares(result)}"


def progress_problem(target, result):
    expected = (f"expected each of {target.clients} clients to get data at least every {MAX_GAP:g} s "
                f"(with {LOAD_IDLE} idle connections open)")
    starved = sum(1 for n in result.per_client_requests if n == 0)
    gap = result.max_gap_ms / 1000
    if starved:
        return (f"{expected}; {starved} finished no download in {target.duration:g} s (the longest wait "
                f"without a byte: {gap:.1f} s)")
    if gap > MAX_GAP:
        return f"{expected}; one waited {gap:.1f} s without a byte"
    if result.errors:
        return f"expected no errors, got {result.errors} ({errors_of(result)})"
    return None


def fairness_problem(result):
    if result.requests and result.fairness is not None and result.fairness >= FAIRNESS:
        return None
    fairness = "nothing to share" if not result.requests else f"{result.fairness:.2f}"
    return f"expected bytes shared fairly (Jain's index >= {FAIRNESS}), got {fairness}: {shares(result)}"


def load(target, ok):
    """One load run shared by the rows that read it; run a second time if `ok`
    says the first missed (a busy machine), and the second counts."""
    runs = target.shared.setdefault("load", [])
    if not runs:
        runs.append(load_once(target))
    if len(runs) == 1 and not ok(runs[0]):
        runs.append(load_once(target))
    return runs[-1]


def load_once(target):
    from ..load import LoadError, run  # imported here: most rows need no load generator

    stop = threading.Event()  # the row's deadline ends the run too
    timer = threading.Timer(max(0.0, target.left() - 1), stop.set)
    timer.start()
    try:
        with ExitStack() as held:
            for _ in range(LOAD_IDLE):
                held.enter_context(target.connect())
            return run(target.url.rstrip("/") + largest_file(target), clients=target.clients,
                       duration=target.duration, timeout=target.duration + target.timeout, processes=0,
                       stop_event=stop)
    except LoadError as error:
        raise Failed(f"the load generator failed: {str(error).splitlines()[0]}") from None
    finally:
        timer.cancel()


def load_seconds(target):
    """The deadline of a load row: two runs, each with its connecting and its timeouts."""
    return 2 * (target.duration + 2 * target.timeout) + 10


def largest_file(target):
    return max(target.files, key=lambda path: len(target.files[path]))


def errors_of(result):
    kinds = {"refused": result.errors_refused, "reset": result.errors_reset,
             "timed out": result.errors_timeout, "bad status": result.errors_bad}
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)


def shares(result):
    return (f"{min(result.per_client_bytes, default=0) / 1e6:.1f} MB to "
            f"{max(result.per_client_bytes, default=0) / 1e6:.1f} MB per client")
