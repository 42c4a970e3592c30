"""Draw docs/coordinated-omission.png: why latency must count the clients left waiting.

    python docs/coordinated_omission.py          # rewrites docs/coordinated-omission.png

A schematic of one second of the iterative server (lesson 01) with 4 clients
and 50 ms per request: it serves client 1 twenty times, and clients 2-4 wait
the whole second for their first answer. A closed-loop load generator that
records answered requests only (wrk's way) sees twenty 50 ms latencies; the
three waiting requests never enter its figures, because a client with no
answer sends nothing more to be timed. Counting them with the time they
have waited (labserver.load's way) moves the p99 from 50 ms to 1000 ms.
"""

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

RUN, EACH, CLIENTS = 1.0, 0.050, 4  # seconds, seconds per request, clients
ANSWERED, WAITING = "C2", "C3"


def draw(path):
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    timeline, numbers = figure.subplots(1, 2, width_ratios=[2.2, 1])

    # Left: who was served when.
    starts = [i * EACH for i in range(round(RUN / EACH))]
    timeline.broken_barh([(start, EACH * 0.92) for start in starts], (CLIENTS - 0.35, 0.7), color=ANSWERED)
    for client in range(2, CLIENTS + 1):
        timeline.broken_barh([(0, RUN)], (CLIENTS - client + 1 - 0.35, 0.7), facecolor="white",
                             edgecolor=WAITING, hatch="//", linewidth=1.5)
        timeline.text(RUN / 2, CLIENTS - client + 1, "sent at 0 s, still waiting at 1 s", ha="center",
                      va="center", fontsize=11, color=WAITING, backgroundcolor="white")
    timeline.set_yticks(range(1, CLIENTS + 1), [f"client {CLIENTS - i}" for i in range(CLIENTS)], fontsize=12)
    timeline.set_xlim(0, RUN)
    timeline.set_xlabel("time (s)", fontsize=12)
    timeline.tick_params(labelsize=11)
    timeline.set_title("The iterative server, 4 clients, 50 ms per request", fontsize=13)
    timeline.legend(handles=[Patch(color=ANSWERED, label="answered: 50 ms each"),
                             Patch(facecolor="white", edgecolor=WAITING, hatch="//", label="unanswered")],
                    loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=11, frameon=False)

    # Right: the p99 each way of counting reports.
    answered = [EACH] * len(starts)
    counted = answered + [RUN] * (CLIENTS - 1)
    p99 = [sorted(values)[max(0, -(-99 * len(values) // 100) - 1)] * 1000 for values in (answered, counted)]
    bars = numbers.bar([0, 1], p99, color=[ANSWERED, WAITING], width=0.6)
    numbers.bar_label(bars, labels=[f"{value:.0f} ms" for value in p99], fontsize=12, padding=3)
    numbers.set_xticks([0, 1], ["answered\nrequests only", "waiting\ncounted too"], fontsize=11)
    numbers.set_ylabel("p99 latency (ms)", fontsize=12)
    numbers.set_ylim(0, RUN * 1000 * 1.2)
    numbers.tick_params(labelsize=11)
    numbers.set_title("What the p99 says", fontsize=13)
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    draw(Path(__file__).resolve().parent / "coordinated-omission.png")
