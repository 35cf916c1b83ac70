"""Instructor commands: `python -m grader {student,solution,student-edition,samples,collect,import,autograde,
formgrader,feedback,grades,similarity,demo,demo-course}`."""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from grader.course import ROOT, Course, CourseError, load_settings
from grader.edition import student_edition
from grader.batch import Batch, grade_shard, serve
from grader.report import format_table, scores, write_exports
from grader.samples import SAMPLES, build_submission


def export_library():
    "Regenerate `dlcourse/` from `nbs/` with nbdev."
    subprocess.run([str(Path(sys.executable).with_name("nbdev-export"))], cwd=ROOT, check=True)


def build_samples(course, names):
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        raise CourseError(f"unknown samples {unknown}; grader/samples.py defines {sorted(SAMPLES)}")
    for name in names:
        shutil.rmtree(course.submitted(name), ignore_errors=True)
        build_submission(course, SAMPLES[name])


def report(course):
    """Print the grade table and write every export (nbgrader's grades.csv, grades_by_part.csv, grades_lms.csv),
    each of every student the gradebook or submitted/ holds, not only those just graded; the table."""
    table = scores(course)
    print(format_table(table, course.settings.parts, course))
    grades, by_part, lms = write_exports(course, table)
    print(f"\nnbgrader export: {shown(grades)}\nper-part breakdown: {shown(by_part)}\nfor an LMS import: {shown(lms)}")
    return table


def shown(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def autograde_and_report(course, students, slurm=False):
    "Grade what is left of `students` (here, or on Slurm), merge, report; student -> error or None."
    batch = Batch(course)
    errors = batch.grade_on_slurm(students) if slurm else batch.grade(students)
    for student, err in errors.items():
        if err:
            print(f"\n{student}: autograding failed:\n{err}", file=sys.stderr)
    print()
    report(course)
    print(f"feedback for students: {shown(course.feedback())}/")
    return errors


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("student", help="build the student version in grader/release/")
    sub.add_parser("solution", help="build the solution version (no hidden tests) in grader/solution/")
    p = sub.add_parser("student-edition", help="the student edition: dist/<assignment>-student.tar.gz")
    p.add_argument("--dist", type=Path, default=ROOT / "dist", help="where to write it (default: %(default)s)")
    sub.add_parser("samples", help="write the sample submissions named in settings.ini to grader/submitted/")
    p = sub.add_parser("collect", help="an LMS download (Canvas, Moodle, Blackboard; students' zips or folders, or a "
                                       "zip of them) filed in grader/submitted/ by nbgrader's zip_collect")
    p.add_argument("paths", nargs="+", type=Path, help="zips or folders")
    p.add_argument("--pattern", default=None, help="a regular expression for other names, with the groups "
                                                   "(?P<student_id>...) and (?P<file_id>...) (settings.ini [collect])")
    p = sub.add_parser("import", help="submissions in the course's own format (zips or folders with hw2/*.py, or a zip "
                                      "or folder of them) as notebooks in grader/submitted/")
    p.add_argument("paths", nargs="+", type=Path)
    p = sub.add_parser("autograde", help="autograde submissions in grader/submitted/, then report and export")
    p.add_argument("students", nargs="*", help="student ids (default: every submission)")
    p.add_argument("--slurm", action="store_true", help="grade as Slurm job arrays (settings.ini [slurm]), then merge")
    p = sub.add_parser("grade-shard", help="(a Slurm task) grade students into a run's scratch gradebook")
    p.add_argument("run", type=Path)
    p.add_argument("worker")
    p.add_argument("--parts", nargs="+", default=None)
    p.add_argument("students", nargs="+")
    p = sub.add_parser("grade-worker", help="(a batch's grading process) grade the students named on stdin")
    p.add_argument("run", type=Path)
    p.add_argument("worker")
    p.add_argument("--session", type=Path, default=None)
    p = sub.add_parser("demo-course", help="a whole course: N generated submissions graded, table, statistics")
    p.add_argument("-n", type=int, default=100, help="submissions (default: %(default)s)")
    p.add_argument("--parts", nargs="+", default=None, help="the notebooks to grade (default: all of settings.ini)")
    p.add_argument("--slurm", action="store_true", help="grade on Slurm (settings.ini [slurm])")
    p.add_argument("--root", type=Path, default=ROOT / "build" / "demo-course", help="its course directory")
    p = sub.add_parser("formgrader", help="JupyterLab in grader/ with nbgrader's formgrader: grade written answers "
                                          "by hand, beside their reference answer and rubric")
    p.add_argument("--port", type=int, default=0, help="the server's port (default: 8888, or the next one free)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    sub.add_parser("feedback", help="HTML feedback of every autograded submission in grader/feedback/ (no hidden tests)")
    sub.add_parser("grades", help="print the grade table and write grader/grades.csv, grades_by_part.csv and "
                                  "grades_lms.csv (every student, written answers included)")
    p = sub.add_parser("similarity", help="rank pairs of submissions by how alike their exercises are (copying check): "
                                          "grader/similarity/")
    p.add_argument("--parts", nargs="+", default=None, help="the notebooks to compare (default: all of settings.ini)")
    p.add_argument("--top", type=int, default=10, help="pairs to print (default: %(default)s)")
    sub.add_parser("demo", help="the whole loop on the sample submissions")
    args = parser.parse_args(argv)

    try:
        if args.command == "grade-worker":
            return serve(args.run, args.worker, args.session)
        if args.command == "grade-shard":
            return grade_shard(args.run, args.worker, args.students, args.parts)
        if args.command == "demo-course":
            from grader.democourse import demo_course
            return demo_course(args.n, args.parts, args.root.resolve(), args.slurm)
        course = Course(load_settings())
        if args.command == "student":
            print(f"student version: {course.student_version().relative_to(ROOT)}")
        elif args.command == "student-edition":
            course.student_version()
            print(f"student edition: {student_edition(course, args.dist)}")
        elif args.command == "solution":
            print(f"solution version: {course.solution_version().relative_to(ROOT)}")
        elif args.command == "samples":
            build_samples(course, course.settings.samples)
        elif args.command == "collect":
            from grader.collect import collect
            result = collect(course, args.paths, args.pattern)
            print(result)
            if result.filed:
                print("grade them with `python -m grader autograde`")
        elif args.command == "import":
            from grader.course_import import import_submissions
            missing = [str(p) for p in args.paths if not p.exists()]
            if missing:
                raise CourseError(f"no such file or folder: {', '.join(missing)}")
            if not course.release.exists():
                course.student_version()
            reports = [r for path in args.paths for r in import_submissions(course, path)]
            print(f"\n{len(reports)} submissions imported into {shown(course.root / 'submitted')}/; "
                  "grade them with `python -m grader autograde`")
        elif args.command == "autograde":
            students = args.students or course.submitted_students()
            missing = [st for st in students if not course.submitted(st).is_dir()]
            if missing:
                raise CourseError(f"no submission for {missing}: expected {course.submitted(missing[0])}/")
            if not students:
                raise CourseError(f"nothing to grade: put submissions in {course.root / 'submitted'}/<student>/"
                                  f"{course.settings.assignment_id}/")
            return 1 if any(autograde_and_report(course, students, args.slurm).values()) else 0
        elif args.command == "formgrader":
            from grader.formgrader import serve as serve_formgrader
            if not course.gradebook_path.exists():
                raise CourseError("no gradebook yet: autograde submissions first (`python -m grader autograde`)")
            return serve_formgrader(course, args.port, browser=not args.no_browser)
        elif args.command == "feedback":
            print(f"feedback: {course.feedback().relative_to(ROOT)}/")
        elif args.command == "grades":
            report(course)
        elif args.command == "similarity":
            from grader.similarity import similarity, summary
            result = similarity(course, args.parts)
            print(f"{summary(result, args.top)}\nreport: {shown(result.folder / 'index.html')}")
        elif args.command == "demo":
            start = time.time()
            print("1/4 exporting the library from nbs/ (nbdev-export)")
            export_library()
            print("2/4 building the student version (nbgrader generate_assignment)")
            course.remove_students(course.settings.samples)  # nbgrader keeps an assignment with submissions fixed
            course.student_version()
            print(f"3/4 writing {len(course.settings.samples)} sample submissions")
            build_samples(course, course.settings.samples)
            print("4/4 autograding them (nbgrader autograde)")
            errors = autograde_and_report(course, list(course.settings.samples))
            print(f"\ndone in {time.time() - start:.0f} s")
            return 1 if any(errors.values()) else 0
    except CourseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
