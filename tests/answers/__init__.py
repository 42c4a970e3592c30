"""A bank of answers to the exercises, written the way students write them.

Each lesson's module registers functions with @right (must pass the check)
or @wrong (must fail it with a message matching `says`). A wrong answer
marked `hangs` spins or blocks: its check must stop it within the check's
deadline (tests/test_check_answers.py shortens the deadlines for these).
Right answers are written differently from the instructor's solutions on
purpose: a check must accept every correct answer, not one formula.
"""

from dataclasses import dataclass


@dataclass
class Answer:
    lesson: str
    check: str
    function: object
    says: str = None  # None: must pass; else a regular expression the failure must match
    hangs: bool = False

    @property
    def name(self):
        verdict = "right" if self.says is None else "wrong"
        return f"{self.lesson}.{self.check}-{verdict}-{self.function.__name__}"


ANSWERS = []


def right(lesson, check):
    def register(function):
        ANSWERS.append(Answer(lesson, check, function))
        return function
    return register


def wrong(lesson, check, says, hangs=False):
    def register(function):
        ANSWERS.append(Answer(lesson, check, function, says, hangs))
        return function
    return register


def load():
    """Every answer of every lesson."""
    from . import lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07, lesson08, lesson09, lesson10  # noqa: F401

    return ANSWERS
