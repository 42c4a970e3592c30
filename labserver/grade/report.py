"""The grade: rows, a score per group, and the same facts as text and as data.

Text is for people; data (as_dict(), `grade --json`) is for programs such as
a Classroom workflow. No program should read the text: a server controls
parts of it (its reason phrases, header values and output), so every piece
of server-supplied text is escaped, control characters and line ends
included, and no row can print a line of its own, a fake `score:` line or a
terminal escape.
"""

from dataclasses import dataclass, field

from .. import __version__
from ..protocol import escape_for_log as escape
from .rows import ROWS


@dataclass
class Check:
    """One row's outcome."""

    name: str
    group: str
    points: int
    passed: bool
    detail: str
    seconds: float = 0.0

    @property
    def earned(self):
        return self.points if self.passed else 0


@dataclass
class Report:
    url: str
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # what the student should know beyond the rows
    refused: str = None  # why the server gets no points at all (the project's rule), or None
    killed: list = field(default_factory=list)  # what had to be killed when the server was stopped
    total: int = 0  # the points of every row, run or not

    @property
    def score(self):
        return 0 if self.refused else sum(check.earned for check in self.checks)

    @property
    def failed(self):
        """The names of the rows that did not pass."""
        return [check.name for check in self.checks if not check.passed]

    @property
    def groups(self):
        """{group: (points earned, points)} in table order."""
        groups = {}
        for check in self.checks:
            earned, points = groups.get(check.group, (0, 0))
            groups[check.group] = (earned + (0 if self.refused else check.earned), points + check.points)
        return groups

    def as_dict(self):
        """The grade as plain data (what `grade --json` writes)."""
        return {
            "graded": True,
            "grader": f"labserver {__version__}",
            "url": self.url,
            "score": self.score,
            "total": self.total,
            "fraction": round(self.score / self.total, 4) if self.total else 0.0,
            "refused": self.refused,
            "groups": [{"name": name, "score": earned, "total": points}
                       for name, (earned, points) in self.groups.items()],
            "rows": [{"name": c.name, "group": c.group, "points": c.points, "earned": c.earned,
                      "passed": c.passed, "detail": c.detail, "seconds": round(c.seconds, 3)} for c in self.checks],
            "notes": self.notes,
            "killed": self.killed,
        }

    # The text.

    def header(self):
        return f"Grading {escape(self.url)}\n{'':4}  {'points':5} {'row':{NAME_WIDTH}}  detail"

    def footer(self):
        lines = [f"{name}: {earned}/{points}" for name, (earned, points) in self.groups.items()]
        lines = ["groups: " + ", ".join(lines)] if lines else []
        lines += [f"note: {escape(note)}" for note in self.notes]
        lines += [f"had to kill: {escape(what)}" for what in self.killed]
        if self.refused:
            lines.append(f"refused: {escape(self.refused)}")
        return "\n".join([*lines, f"score: {self.score}/{self.total}"])

    def table(self):
        return "\n".join([self.header(), *map(format_check, self.checks), self.footer()])

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<Report {self.url} score {self.score}/{self.total}>"

    def _repr_pretty_(self, printer, cycle):  # a notebook cell ending in `report` shows the table
        printer.text(self.table())


NAME_WIDTH = max(len(row.name) for row in ROWS)


def format_check(check):
    result = "pass" if check.passed else "FAIL"
    return f"{result:4}  {check.earned:>2}/{check.points:<2} {check.name:{NAME_WIDTH}}  {escape(check.detail)}"


def could_not_grade(reason):
    """What `grade --json` writes when there is no grade (exit status 2)."""
    return {"graded": False, "grader": f"labserver {__version__}", "error": reason}
