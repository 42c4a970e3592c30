"""Graded assignments: the student release, and grading that a student cannot edit or bypass.

    python -m labserver assignments build --out ../labserver-student --template ORG/REPO --ref grading-v1
    python -m labserver assignments hidden --student ../repos/alice ../repos/bob --out ../graded
    python -m labserver assignments grade --reference KIT --submission DIR --out DIR    (the Classroom workflow)
    python -m labserver assignments score --results DIR/results.json --step 01.recv_exactly  (a Classroom step)

release.py builds the student version of the lessons (solutions stubbed,
hidden checks removed, a pinned Classroom workflow); grading.py grades a
submission in a fresh grading copy with the reference's checks, points per
exercise, and writes results.json (and, for several students, grades.csv).
classroom/INSTRUCTORS.md is the instructor's guide to both.
"""

import sys
from pathlib import Path

from .grading import grade_submission, graded_notebook, scan, score, table, write_gradebook
from .release import (PLACEHOLDER_REF, PLACEHOLDER_REPO, STUB, AssignmentError, build, classroom_workflow, exercises,
                      graded, leaked_solutions, student_notebook, student_source)

__all__ = ["AssignmentError", "STUB", "build", "classroom_workflow", "exercises", "graded", "graded_notebook",
           "grade_submission", "leaked_solutions", "scan", "score", "student_notebook", "student_source", "table",
           "write_gradebook", "add_arguments", "command"]


def add_arguments(parser):
    """The `assignments` command's arguments (labserver.cli adds the command)."""
    parser.add_argument("action", choices=["build", "hidden", "grade", "score"],
                        help="build: the student release; hidden: grade students' repositories with every check, "
                             "hidden ones included; grade: grade one submission with a reference kit (the Classroom "
                             "workflow); score: one exercise's result from a results.json (a Classroom step)")
    parser.add_argument("--out", metavar="DIR", help="build, hidden, grade: the folder to write to")
    parser.add_argument("--kit", default=".", metavar="DIR", help="the instructor's kit (default: this folder)")
    parser.add_argument("--force", action="store_true", help="build: replace DIR if it is not empty")
    parser.add_argument("--keep-hidden", action="store_true",
                        help="build: the graders' reference (the release with its hidden checks, no solution)")
    parser.add_argument("--template", default=PLACEHOLDER_REPO, metavar="ORG/REPO",
                        help="build: the Classroom template repository the release is pushed to")
    parser.add_argument("--ref", default=PLACEHOLDER_REF, metavar="TAG",
                        help="build: the tag of the template that pins the grading kit")
    parser.add_argument("--student", nargs="+", metavar="DIR", help="hidden: the students' repositories")
    parser.add_argument("--reference", metavar="DIR", help="grade: the kit to grade with (the template at its tag)")
    parser.add_argument("--submission", metavar="DIR", help="grade: the student's repository")
    parser.add_argument("--notebooks", metavar="01,03", help="hidden, grade: only these lessons (default: all)")
    parser.add_argument("--no-project", action="store_true", help="hidden, grade: leave the project out")
    parser.add_argument("--profile", default="ci", help="hidden, grade: LABSERVER_PROFILE for the notebooks (default ci)")
    parser.add_argument("--results", metavar="FILE", help="score: the results.json written by grade or hidden")
    parser.add_argument("--step", metavar="ID", help="score: an exercise id (01.recv_exactly) or project:FRACTION")


def command(args):
    """Run `labserver assignments ACTION`; 0 when done, 1 when a scored item failed, 2 on a mistake."""
    needs = {"build": ["out"], "hidden": ["out", "student"], "grade": ["out", "reference", "submission"],
             "score": ["results", "step"]}[args.action]
    missing = [name for name in needs if not getattr(args, name)]
    if missing:
        return _fail(f"assignments {args.action} needs --{missing[0]}")
    lessons = args.notebooks.split(",") if args.notebooks else None
    try:
        if args.action == "build":
            written = build(args.out, args.kit, force=args.force, template=args.template, ref=args.ref,
                            keep_hidden=args.keep_hidden)
            if args.keep_hidden:
                print(f"Wrote the graders' reference to {args.out}: the release with its hidden checks. Never "
                      f"give it to students; grade with it: assignments hidden --kit {args.out} ...")
                return 0
            print(f"Wrote the student release to {args.out}: {len(written)} notebooks, solutions stubbed, hidden "
                  f"checks removed, .github/workflows/classroom.yml grading with {args.template}@{args.ref}.")
            if args.template == PLACEHOLDER_REPO:
                print("Give --template ORG/REPO and --ref TAG before you publish it: the workflow installs the "
                      "grading kit from there.")
            return 0
        if args.action == "score":
            passed, message = score(args.results, args.step)
            print(message)
            return 0 if passed else 1
        if args.action == "grade":
            results = grade_submission(args.submission, args.reference, args.out, hidden=False,
                                       project=not args.no_project, profile=args.profile, notebooks=lessons)
            print(table(results))
            return 0
        names = [Path(student).resolve().name for student in args.student]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            return _fail(f"two repositories are named {twice[0]!r}: their grading copies would overwrite each other")
        everyone = []
        for student in args.student:
            out = Path(args.out) / Path(student).resolve().name
            results = grade_submission(student, args.kit, out, hidden=True, project=not args.no_project,
                                       profile=args.profile, notebooks=lessons)
            print(table(results), flush=True)
            everyone.append(results)
        write_gradebook(everyone, Path(args.out) / "grades.csv")
        print(f"Gradebook: {Path(args.out) / 'grades.csv'}; each student's results.json and executed notebooks "
              f"are in {args.out}/<student>/.")
        return 0
    except (AssignmentError, OSError, ValueError) as error:
        return _fail(str(error))


def _fail(message):
    print(f"labserver assignments: error: {message}", file=sys.stderr)
    return 2
