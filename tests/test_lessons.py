"""What makes a lesson teachable, checked on every notebook.

- Predict, then measure: each lesson has a prediction cell (metadata
  {"labserver": {"prediction": "NN.name"}}) before the experiment that answers
  it (metadata {"labserver": {"experiment": "NN.name"}}); `versus(...)` puts
  the guess beside the measurement, and a question afterwards asks the student
  to compare the two.
- A quiz: a markdown cell with a "**Quiz**" line and numbered questions.
- An answer key for the instructor, classroom/answers/NN.md: every quiz
  question answered under "## Quiz" with the same number, the expected figures
  of the experiments, and how long the lesson takes. The key never reaches the
  student release.
"""

import json
import re
from pathlib import Path

import pytest

from labserver.assignments import build

KIT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((KIT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
ANSWERS = KIT / "classroom" / "answers"
SECTIONS = ["## Quiz", "## Expected figures", "## Timing"]


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell):
    return "".join(cell["source"])


def tag(cell, key):
    return cell.get("metadata", {}).get("labserver", {}).get(key)


def quiz_numbers(markdown):
    """The numbers of the questions that follow a **Quiz** line."""
    after = markdown.split("**Quiz**", 1)[1]
    numbers = []
    for line in after.splitlines():
        found = re.match(r"(\d+)\.\s", line)
        if found:
            numbers.append(int(found.group(1)))
        elif numbers and line.strip() and not line.startswith(" "):
            break  # the quiz is over: the next paragraph
    return numbers


def key_section(key, title):
    parts = re.split(r"^(## .*)$", key, flags=re.M)
    for head, body in zip(parts[1::2], parts[2::2]):
        if head.strip() == title:
            return body
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_prediction_comes_before_its_experiment_and_is_compared_after(path):
    lesson = cells(path)
    predictions = {tag(c, "prediction"): i for i, c in enumerate(lesson) if tag(c, "prediction")}
    assert predictions, f"{path.name}: no prediction cell (metadata labserver.prediction)"
    for name, at in predictions.items():
        assert name.startswith(path.name[:2] + "."), f"{path.name}: prediction {name!r} is not numbered for it"
        assert lesson[at]["cell_type"] == "code", f"{name}: the student writes the guess in a code cell"
        experiments = [i for i, c in enumerate(lesson) if tag(c, "experiment") == name]
        assert experiments, f"{name}: no experiment cell answers the prediction"
        assert experiments[0] > at, f"{name}: the experiment runs before the prediction is written"
        after = lesson[experiments[0]:]
        assert any("versus(" in text(c) for c in after if c["cell_type"] == "code"), \
            f"{name}: nothing puts the prediction beside the measurement (versus)"
        assert any("predict" in text(c).lower() and "?" in text(c) for c in after if c["cell_type"] == "markdown"), \
            f"{name}: no question afterwards compares the prediction with the result"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_quiz_question_is_answered_in_the_key(path):
    quizzes = [text(c) for c in cells(path) if c["cell_type"] == "markdown" and "**Quiz**" in text(c)]
    assert len(quizzes) == 1, f"{path.name}: one **Quiz** cell expected, found {len(quizzes)}"
    numbers = quiz_numbers(quizzes[0])
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2, \
        f"{path.name}: the quiz's questions should be numbered 1, 2, ...: {numbers}"
    key_path = ANSWERS / f"{path.name[:2]}.md"
    assert key_path.exists(), f"no answer key {key_path.relative_to(KIT)}"
    key = key_path.read_text(encoding="utf-8")
    for title in SECTIONS:
        body = key_section(key, title)
        assert body is not None and body.strip(), f"{key_path.name}: no '{title}' section"
    answered = [int(n) for n in re.findall(r"^(\d+)\.\s+\S", key_section(key, "## Quiz"), flags=re.M)]
    assert answered == numbers, f"{key_path.name}: the quiz has questions {numbers}, the key answers {answered}"


def test_every_key_belongs_to_a_lesson():
    lessons = {p.name[:2] for p in NOTEBOOKS}
    keys = {p.stem for p in ANSWERS.glob("*.md")}
    assert keys == lessons


def test_the_key_is_not_in_the_student_release(tmp_path):
    build(tmp_path / "release", kit=KIT)
    released = [p for p in (tmp_path / "release").rglob("*") if p.is_file()]
    assert not any("answers" in p.relative_to(tmp_path / "release").parts[:2] and p.suffix == ".md"
                   for p in released)
    # A distinctive line of each key appears in no released file.
    lines = []
    for key in ANSWERS.glob("*.md"):
        quiz = key_section(key.read_text(encoding="utf-8"), "## Quiz") or ""
        lines += [line.strip() for line in quiz.splitlines() if len(line.strip()) > 60][:2]
    assert lines
    for path in released:
        content = path.read_bytes().decode("utf-8", "replace")
        for line in lines:
            assert line not in content, f"{path.name} holds a line of the answer key: {line[:50]}..."
