"""`python -m grader collect`: an LMS download filed in `submitted/<student>/<assignment>/` by nbgrader's zip_collect.

What it takes, as zips or folders, in any mix:

* an LMS's "download all submissions": Canvas (`<lastfirst>_[LATE_]<id>_<submission>_<file>`), Moodle
  (`<Full Name>_<id>_assignsubmission_file_<file>`, flat or in folders), Blackboard
  (`<assignment>_<user>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>`), or names read by settings.ini's `pattern`;
* per-student zips or folders named by the student id (`<id>.zip` with the notebooks inside, at any depth), and a
  zip or folder of those;
* per-student zips in the course's own format (`hw2/*.py`), which go through `grader.course_import`.

nbgrader extracts the archives (into `downloaded/<assignment>/extracted/`), reads each file's name with
`LmsCollector` and files the notebooks, with the submission time in `timestamp.txt` for its late penalties: the time
in the file's name where the LMS writes one, the archive member's date otherwise. A submission already collected that
is as new or newer is kept. Whatever is not filed is reported with the reason.
"""
import datetime
import io
import os
import re
import shutil
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import dateutil.parser
import dateutil.tz
from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from nbgrader.utils import find_all_notebooks, parse_utc
from traitlets import Dict, Unicode

from grader.course import CourseError
from grader.course_import import MODULES, import_submissions

# The LMSs' names for a student's file, searched in its path inside the download. `file_id` is the rest of the path:
# the file's own name, or a folder (a zip the student uploaded) and the file in it.
PATTERNS = {
    "canvas": r"(?:^|/)[^/_]+_(?:(?i:late)_)?(?P<student_id>\d+)_\d+_(?P<file_id>[^/].*)$",
    "moodle": r"(?:^|/)[^/]+?_(?P<student_id>\d+)_assignsubmission_file_*/?(?P<file_id>[^/].*)$",
    "blackboard": r"(?:^|/)[^/]*_(?P<student_id>[^/_]+)_attempt_(?P<timestamp>\d{4}(?:-\d\d){5})_?(?P<file_id>.*)$",
}
TIME_FORMATS = ("%Y-%m-%d-%H-%M-%S",)  # Blackboard's; others are read by dateutil
JUNK = re.compile(r"(?:^|/)(?:__MACOSX/|\._|\.DS_Store$)")


def zone(name: str):
    "The time zone named in settings.ini (empty: this machine's)."
    tz = dateutil.tz.gettz(name) if name else dateutil.tz.tzlocal()
    if tz is None:
        raise CourseError(f"settings.ini [collect] timezone = {name!r} is not a time zone (e.g. Europe/Berlin)")
    return tz


class DatedExtractor(ExtractorPlugin):
    "nbgrader's extraction, after which each extracted file bears its archive member's date."

    timezone = Unicode("", help="Time zone of the archives' dates (empty: this machine's)").tag(config=True)

    def extract(self, archive_path, extracted_path):
        super().extract(archive_path, extracted_path)
        tz = zone(self.timezone)
        for root, _, files in os.walk(archive_path):
            out = Path(extracted_path, os.path.relpath(root, archive_path))
            for name in files:
                src = Path(root, name)
                if src.suffix in self.zip_ext:
                    self._date_members(src, out, tz)
                elif (out / name).exists():
                    os.utime(out / name, (src.stat().st_mtime,) * 2)

    def _date_members(self, archive: Path, out: Path, tz):
        "Date what nbgrader extracted from `archive` (into `out/<its stem>/`), nested archives included."
        folder = out / re.sub(r"\.tar$", "", archive.stem)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                dates = {i.filename: datetime.datetime(*i.date_time, tzinfo=tz).timestamp() for i in z.infolist()}
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                dates = {m.name: m.mtime for m in t.getmembers()}
        else:
            return
        for name, stamp in dates.items():
            target = folder / name
            if target.is_file():
                os.utime(target, (stamp, stamp))
                if target.suffix in self.zip_ext:
                    self._date_members(target, target.parent, tz)


class LmsCollector(FileNameCollectorPlugin):
    """Reads a student id, a notebook and a time from each extracted file's path (relative to the extracted folder):
    `named_regexp` first, then the LMS names of `patterns`, then the top folder's name (a student's own zip or
    folder) unless that folder is an LMS download. Every file not collected gets a reason in `skipped`."""

    patterns = Dict(PATTERNS, help="LMS name -> regular expression searched in a file's path").tag(config=True)
    timezone = Unicode("", help="Time zone of the LMS's times (empty: this machine's)").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.skipped = {}  # path -> why
        self.course_dirs = {}  # folder in the course's format -> (student, name, timestamp), or why not
        self._lms_tops = self._released = None

    @property
    def root(self) -> Path:
        return Path(self.parent._format_collect_path(self.parent.extracted_directory))

    def _regexps(self) -> list:
        return [self.named_regexp] * bool(self.named_regexp) + list(self.patterns.values())

    def _read(self, rel: str):
        "student id, the rest of the path, timestamp (str or None) from an LMS name in `rel`; None if none matches."
        for regexp in self._regexps():
            m = re.search(regexp, rel)
            if m:
                return m["student_id"], m["file_id"] or "", m.groupdict().get("timestamp")
        return None

    def _scan(self):
        "Once: the assignment's notebooks, the top folders that are LMS downloads, the course-format submissions."
        course = self.parent.coursedir
        self._released = find_all_notebooks(course.format_path(course.release_directory, ".", course.assignment_id))
        self._lms_tops = set()
        files = [Path(r, f).relative_to(self.root).as_posix() for r, _, fs in os.walk(self.root) for f in fs]
        for rel in files:
            if "/" in rel and not JUNK.search(rel) and self._read(rel.split("/", 1)[1]):
                self._lms_tops.add(rel.split("/")[0])
        for rel in files:
            parts = rel.split("/")
            if len(parts) >= 2 and parts[-2] == "hw2" and parts[-1].removesuffix(".py") in MODULES:
                folder = "/".join(parts[:-2])
                # with the assignment's notebooks (a student's whole edition folder), the notebooks are the submission
                notebooks = any(f.startswith(folder + "/") and Path(f).name in self._released for f in files)
                if folder and folder not in self.course_dirs and not notebooks:
                    self.course_dirs[folder] = self._owner(folder)

    def _owner(self, rel: str):
        """(student id, the file's name, timestamp) of the file or folder `rel`; a str saying why not where no student
        can be read from its path."""
        found = self._read(rel)
        if found:
            student, rest, stamp = found
            return student, Path(rest).name, self._time(stamp, self.root / rel)
        top = rel.split("/")[0]
        if "/" not in rel:
            return "no student id in its name, and not in a student's zip or folder"
        if top in self._lms_tops:
            return f"no student id in its name ({top} is an LMS download; see settings.ini [collect] pattern)"
        student = re.sub(rf"^{re.escape(self.parent.coursedir.assignment_id)}[-_]", "", top)
        return student, Path(rel).name, self._time(None, self.root / rel)

    def _time(self, stamp, path: Path) -> str:
        "The submission time, ISO with its UTC offset: `stamp` from the name, else the newest file's date at `path`."
        tz = zone(self.timezone)
        if stamp:
            for fmt in TIME_FORMATS:
                try:
                    when = datetime.datetime.strptime(stamp, fmt)
                    break
                except ValueError:
                    pass
            else:
                when = dateutil.parser.parse(stamp)
            return (when if when.tzinfo else when.replace(tzinfo=tz)).isoformat()
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        newest = max((p.stat().st_mtime for p in files), default=time.time())
        return datetime.datetime.fromtimestamp(newest, tz).isoformat()

    def collect(self, submitted_file):
        if self._lms_tops is None:
            self._scan()
        rel = Path(submitted_file).relative_to(self.root).as_posix()
        if any(rel.startswith(folder + "/") for folder in self.course_dirs):
            return None  # a course-format submission: the importer's
        if JUNK.search(rel):
            return None
        if Path(rel).suffix not in self.valid_ext:
            self.skipped[rel] = "not a notebook"
            return None
        owner = self._owner(rel)
        if isinstance(owner, str):
            self.skipped[rel] = owner
            return None
        student, name, stamp = owner
        renamed = re.sub(r"-\d+(\.ipynb)$", r"\1", name)  # Canvas numbers a file uploaded again: part1-1.ipynb
        if name not in self._released and renamed in self._released:
            name = renamed
        if name not in self._released:
            self.skipped[rel] = f"not a notebook of {self.parent.coursedir.assignment_id} ({name})"
            return None
        return dict(student_id=student, file_id=name, timestamp=stamp)


@dataclass
class Collected:
    "What `collect` filed and what it did not."
    filed: dict = field(default_factory=dict)  # student -> (notebooks, UTC time)
    imported: list = field(default_factory=list)  # course_import.ImportReport of course-format submissions
    kept: dict = field(default_factory=dict)  # student -> why the submission already there was kept
    skipped: dict = field(default_factory=dict)  # path inside the download -> why

    def __str__(self):
        lines = [f"{len(self.filed)} submissions filed" + ":" * bool(self.filed)]
        lines += [f"  {st}: {len(nbs)} notebook{'s' * (len(nbs) != 1)}, submitted {when} UTC"
                  for st, (nbs, when) in sorted(self.filed.items())]
        for title, items in [("submissions kept as they were", self.kept), ("files skipped", self.skipped)]:
            if items:
                lines += [f"{len(items)} {title}:"] + [f"  {k}: {why}" for k, why in sorted(items.items())]
        return "\n".join(lines)


class CollectApp(ZipCollectApp):
    "nbgrader's zip_collect that keeps a submission already collected when it is as new or newer, and reports."

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.result = Collected()

    def fail(self, msg, *args):
        raise CourseError(msg % args if args else msg)

    def _collect_files(self, src_files):
        data = super()._collect_files(src_files)
        taken = {f for d in data.values() for f in d["src_files"]}
        for f in src_files:  # collected, but nbgrader kept a newer copy of the same notebook
            rel = Path(f).relative_to(self.collector_plugin_inst.root).as_posix()
            if f not in taken and rel not in self.collector_plugin_inst.skipped and not JUNK.search(rel) and \
                    not any(rel.startswith(d + "/") for d in self.collector_plugin_inst.course_dirs):
                self.result.skipped[rel] = "an older copy of a notebook this student handed in again"
        return data

    def _transfer_files(self, collected_data):
        newer = {st: d for st, d in collected_data.items() if self.newer(st, d["timestamp"])}
        super()._transfer_files(newer)
        for st, d in newer.items():
            self.result.filed[st] = (sorted(d["file_ids"]), d["timestamp"])

    def newer(self, student, when) -> bool:
        "Whether a submission of `when` (UTC) replaces the one already in `submitted/`; if not, say why in `kept`."
        folder = self.coursedir.format_path(self.coursedir.submitted_directory, student, self.coursedir.assignment_id)
        if not os.path.isdir(folder) or not os.listdir(folder):
            return True
        old = self.coursedir.get_existing_timestamp(folder)
        if when is None:
            self.result.kept[student] = "the download gives no time to compare with the submission there"
        elif old is None:
            self.result.kept[student] = (f"the submission there has no timestamp.txt to compare with this one "
                                         f"({when} UTC); remove it to collect this one")
        elif when <= old:
            self.result.kept[student] = f"the submission there ({old} UTC) is not older than this one ({when} UTC)"
        return None not in (old, when) and when > old


def stage(paths, archive: Path) -> dict:
    """Copy the inputs into nbgrader's archive folder, a collection (a folder of students' zips or folders, a zip of
    zips) as its members, so that each student's zip or folder lies at the top. Returns path -> why skipped."""
    skipped = {}

    def put(src: Path, name: str, data: bytes = None):
        target = archive / name
        if target.exists():
            raise CourseError(f"two inputs are named {name}: rename one")
        if data is not None:
            target.write_bytes(data)
        elif src.is_dir():
            shutil.copytree(src, target)  # dates kept, as copy2 keeps them
        else:
            shutil.copy2(src, target)

    for path in map(Path, paths):
        if path.is_dir():
            one = any(path.glob("*.ipynb")) or (path / "hw2").is_dir()
            for child in [path] if one else sorted(path.iterdir()):
                put(child, child.name)
        elif path.suffix == ".zip" and not zipfile.is_zipfile(path):
            skipped[path.name] = "not a readable zip"
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                members = [i for i in z.infolist() if not i.is_dir() and not JUNK.search(i.filename)]
                if members and all(i.filename.endswith(".zip") for i in members):  # a zip of students' zips
                    for i in members:
                        data = z.read(i)
                        if zipfile.is_zipfile(io.BytesIO(data)):
                            put(None, Path(i.filename).name, data)
                        else:
                            skipped[f"{path.name}/{i.filename}"] = "not a readable zip"
                    continue
            put(path, path.name)
        else:
            put(path, path.name)
    return skipped


def collect(course, paths, pattern: str = None, out=print) -> Collected:
    """File the submissions at `paths` (zips or folders) under `submitted/` with nbgrader's zip_collect, and the
    course-format ones with `course_import`. `pattern`: a regular expression for the names, over settings.ini's."""
    s = course.settings
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise CourseError(f"no such file or folder: {', '.join(missing)}")
    if pattern:
        try:
            groups = re.compile(pattern).groupindex
        except re.error as e:
            raise CourseError(f"--pattern {pattern!r} is not a regular expression: {e}") from e
        if not {"student_id", "file_id"} <= set(groups):
            raise CourseError(f"--pattern {pattern!r} must name the groups (?P<student_id>...) and (?P<file_id>...)")
    course.write_config()
    if not course.release.exists():
        course.student_version()
    download = course.root / "downloaded" / s.assignment_id
    shutil.rmtree(download / "archive", ignore_errors=True)
    (download / "archive").mkdir(parents=True)
    skipped = stage(paths, download / "archive")

    app = CollectApp()
    result = app.result
    argv = [s.assignment_id, "--force", "--log-level=ERROR", f"--CourseDirectory.root={course.root}"]
    if pattern:
        argv.append(f"--FileNameCollectorPlugin.named_regexp={pattern}")
    app.initialize(argv)
    app.start()
    plugin = app.collector_plugin_inst
    result.skipped.update(skipped | plugin.skipped)

    with tempfile.TemporaryDirectory() as tmp:
        for folder, owner in sorted(plugin.course_dirs.items()):
            if isinstance(owner, str):
                result.skipped[folder + "/"] = owner
                continue
            student, _, stamp = owner
            when = parse_utc(stamp)
            if not app.newer(student, when):
                continue
            shutil.rmtree(course.submitted(student), ignore_errors=True)
            shutil.copytree(plugin.root / folder, Path(tmp, student))
            result.imported += import_submissions(course, Path(tmp, student), out=out)
            (course.submitted(student) / "timestamp.txt").write_text(when.isoformat(" "))
            result.filed[student] = (sorted(p.name for p in course.submitted(student).glob("*.ipynb")), when)
    return result
