"""The command line, compatible with Code.org's ``rubric_tester.py`` (with its bugs fixed: ``-t 0``
and ``-n`` are honoured whenever given, never replaced by ``params.json``)."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASET = "contractor-grades-batch-1-fall-2023"
DEFAULT_BUCKET = "cdo-ai"
DEFAULT_PREFIX = "teaching_assistant"
SAMPLE_NAME = "sample"


@dataclass(frozen=True)
class Options:
    lesson_names: list[str] | None
    dataset_name: str
    experiment_kind: str  # "experiments" | "releases"
    experiment_name: str
    use_cached: bool
    llm_model: str | None
    num_responses: int | None
    max_num_students: int
    student_ids: list[str] | None
    temperature: float | None
    download: bool
    accuracy: str | None  # thresholds file ("" = the default location)
    remove_comments: bool
    generate_confidence: bool
    workers: int
    new_labels: bool
    prefer_actual_labels: bool
    dry_run: bool
    output_dir: Path | None
    export_examples: Path | None
    upload: bool
    data_root: Path
    s3_bucket: str | None
    s3_prefix: str | None
    progress: bool
    timeout: float | None
    #: ``--dynamic-examples K``: also assess with the K nearest graded examples (None: fixed only)
    dynamic_examples: int | None = None
    #: ``--examples-from``: a dataset name or ``collection:NAME`` (None: the run's own dataset)
    examples_from: str | None = None


#: What a dataset, experiment, release, lesson or student name may be: it becomes a folder or file
#: name and an S3 key segment, so no path separators, no "..", no leading dot or dash.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
IDENTIFIER_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters"
#: S3 bucket names (the AWS naming rules, simplified: no path or key characters can get through).
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def is_identifier(text: str) -> bool:
    return bool(IDENTIFIER.fullmatch(text)) and ".." not in text


def identifier(text: str) -> str:
    if not is_identifier(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a name ({IDENTIFIER_RULE})")
    return text


def _csv_list(text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _identifier_list(text: str) -> list[str]:
    items = _csv_list(text)
    bad = [item for item in items if not is_identifier(item)]
    if bad:
        listed = ", ".join(repr(b) for b in bad)
        verb = "is not a name" if len(bad) == 1 else "are not names"
        raise argparse.ArgumentTypeError(f"{listed} {verb} ({IDENTIFIER_RULE})")
    return items


def bucket_name(text: str) -> str:
    if not BUCKET.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not an S3 bucket name")
    return text


def key_prefix(text: str) -> str:
    """A key prefix: '/'-separated names (or empty for the bucket's root)."""
    parts = [part for part in text.strip("/").split("/")]
    if text.strip("/") and not all(is_identifier(part) for part in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a key prefix ('/'-separated names of {IDENTIFIER_RULE})"
        )
    return text


#: Dynamic examples per student (as /assessment's examples-count).
MAX_DYNAMIC_EXAMPLES = 10
COLLECTION_PREFIX = "collection:"
#: A retrieval collection name (``lib/retrieval/store.py``).
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _examples_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_DYNAMIC_EXAMPLES:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_DYNAMIC_EXAMPLES}")
    return value


def examples_source(text: str) -> str:
    """A dataset name (a folder under datasets/, so a name, never a path) or ``collection:NAME``."""
    if text.startswith(COLLECTION_PREFIX):
        if not COLLECTION_NAME.fullmatch(text[len(COLLECTION_PREFIX) :]):
            raise argparse.ArgumentTypeError(
                f"{text!r}: a collection name is 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return text
    if not is_identifier(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a dataset name ({IDENTIFIER_RULE}) or collection:NAME"
        )
    return text


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rubric_tester.py",
        description=(
            "Measure AI rubric labels against human labels. Runs the assessment pipeline (the same lib/ "
            "code as POST /assessment) on every selected student of every lesson, caches every answer, "
            "and writes report.html, summary.json and predictions.csv."
        ),
        epilog=(
            "Exit status: 0 success; 1 an accuracy threshold (-a) was missed; 2 invalid options or input "
            "data (nothing was called); 3 the run failed (S3 trouble, or every assessment failed). "
            "Offline example: python lib/assessment/rubric_tester.py --dataset-name sample -l local"
        ),
    )
    p.add_argument(
        "--lesson-names",
        type=_identifier_list,
        default=None,
        help="Comma-separated lessons to run. Default: every lesson of the experiment/release.",
    )
    p.add_argument(
        "--dataset-name",
        type=identifier,
        default=DEFAULT_DATASET,
        help=f"Dataset folder under datasets/ (local or S3). Default: {DEFAULT_DATASET}. "
        f"'{SAMPLE_NAME}' is the bundled offline sample.",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--experiment-name",
        type=identifier,
        default=None,
        help="Experiment folder under experiments/ holding params.json, prompt, rubric, examples. "
        f"Default with --dataset-name {SAMPLE_NAME}: {SAMPLE_NAME}.",
    )
    who.add_argument(
        "--release-name",
        type=identifier,
        default=None,
        help="Release folder under releases/ (same layout plus confidence.json).",
    )
    p.add_argument(
        "-c",
        "--use-cached",
        action="store_true",
        help="Reuse cached answers; only students with no cached answer for the exact same "
        "inputs (model, params, prompt, rubric, examples, code) are assessed.",
    )
    p.add_argument(
        "-l",
        "--llm-model",
        default=None,
        help="Model to use (any routable name: gpt-*, bedrock.<id>, local). Default: params.json.",
    )
    p.add_argument(
        "-n",
        "--num-responses",
        type=int,
        default=None,
        help="Responses per student (majority vote). Must be >= 1. Default: params.json. "
        "Given values are always honoured.",
    )
    p.add_argument(
        "-s",
        "--max-num-students",
        type=_non_negative_int,
        default=100,
        help="Maximum students per lesson (first by file name). Default: 100. Ignored with --student-ids.",
    )
    p.add_argument(
        "--student-ids",
        type=_identifier_list,
        default=None,
        help="Comma-separated student ids to assess (each must have a .js file and labels).",
    )
    p.add_argument(
        "-t",
        "--temperature",
        type=float,
        default=None,
        help="Sampling temperature (0-2; 0 is honoured). Default: params.json.",
    )
    p.add_argument(
        "-d",
        "--download",
        action="store_true",
        help="Download the dataset and experiment/release from S3 again, replacing local copies.",
    )
    p.add_argument(
        "-a",
        "--accuracy",
        nargs="?",
        const="",
        default=None,
        metavar="THRESHOLDS_JSON",
        help="Accuracy gate: exit 1 when an exact-match accuracy is below its threshold. File "
        "format {lesson: {overall: x, key_concepts: {kc: x}}}; without a value, "
        "accuracy_thresholds.json in the experiment/release folder, then in the data root.",
    )
    p.add_argument(
        "-r",
        "--remove-comments",
        action="store_true",
        help="Remove comments from student code before assessing (default: params.json).",
    )
    p.add_argument(
        "-g",
        "--generate-confidence",
        action="store_true",
        help="Write confidence.json and confidence-exact.json for each lesson.",
    )
    p.add_argument(
        "-w",
        "--workers",
        type=_positive_int,
        default=7,
        help="Concurrent assessments across all students and lessons. Default: 7.",
    )
    p.add_argument(
        "--new-labels",
        action="store_true",
        help="As in Code.org's tool: write the AI's labels as a new labels file, "
        "<output>/<lesson>/new_labels.csv, in actual_labels.csv's format (student, one column per "
        "key concept; failed students left out), e.g. to seed a dataset for human review.",
    )
    p.add_argument(
        "--prefer-actual-labels",
        action="store_true",
        help="Read actual_labels.csv even when a legacy expected_grades.csv is present "
        "(by default the legacy file wins, as in Code.org's tool).",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="Validate everything and print what would be called: model calls, estimated "
        "tokens and cost. Calls nothing.",
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="Where report.html, summary.json, predictions.csv and cached answers go. Default: "
        "<experiment>/output (for the bundled sample: ./output/sample).",
    )
    p.add_argument(
        "--export-examples",
        type=Path,
        default=None,
        metavar="DIR",
        help="Write DIR/<lesson>/<id>.js and <id>.json|.tsv (the model's answer) for every "
        "assessed student, in the form examples/ expects.",
    )
    p.add_argument(
        "--upload",
        action="store_true",
        help="After the run, upload the experiment/release folder (with output/ and cached answers) to S3.",
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=Path("."),
        help="Folder holding datasets/, experiments/, releases/; S3 downloads land here. "
        "Default: the current directory.",
    )
    p.add_argument(
        "--s3-bucket",
        type=bucket_name,
        default=None,
        help=f"S3 bucket (default: setting RUBRIC_TESTER_S3_BUCKET, else {DEFAULT_BUCKET}).",
    )
    p.add_argument(
        "--s3-prefix",
        type=key_prefix,
        default=None,
        help=f"S3 key prefix (default: setting RUBRIC_TESTER_S3_PREFIX, else {DEFAULT_PREFIX}).",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Deadline of one student's assessment (all its model calls and retries). Default: "
        "the REQUEST_DEADLINE_SECONDS setting (150). Raise it for the embedded local model on a "
        "small CPU.",
    )
    p.add_argument(
        "--dynamic-examples",
        type=_examples_count,
        default=None,
        metavar="K",
        help=f"Also assess every student with the K (1-{MAX_DYNAMIC_EXAMPLES}) graded examples nearest to "
        "their program (comments removed, embedded with the configured embedding model: local "
        "offline) instead of the fixed examples/, and report fixed vs dynamic accuracy side by side.",
    )
    p.add_argument(
        "--examples-from",
        type=examples_source,
        default=None,
        metavar="SOURCE",
        help="Where --dynamic-examples come from: a dataset name (its graded students, answers being "
        "their human labels; a student is never its own example) or collection:NAME (a retrieval "
        "collection in the service's database). Default: the dataset being measured.",
    )
    p.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")
    return p


def parse_options(argv: list[str] | None) -> Options:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.release_name:
        kind, name = "releases", ns.release_name
    elif ns.experiment_name:
        kind, name = "experiments", ns.experiment_name
    elif ns.dataset_name == SAMPLE_NAME:
        kind, name = "experiments", SAMPLE_NAME
    else:
        parser.error("name the experiment or release to run: --experiment-name NAME or --release-name NAME")
    if ns.num_responses is not None and ns.num_responses < 1:
        parser.error(f"argument -n/--num-responses: must be >= 1 (got {ns.num_responses})")
    if ns.temperature is not None and not 0.0 <= ns.temperature <= 2.0:
        parser.error(f"argument -t/--temperature: must be between 0 and 2 (got {ns.temperature})")
    if ns.max_num_students == 0 and not ns.student_ids:
        parser.error("argument -s/--max-num-students: 0 selects no student")
    if ns.timeout is not None and ns.timeout <= 0:
        parser.error("argument --timeout: must be > 0")
    if ns.examples_from is not None and ns.dynamic_examples is None:
        parser.error("argument --examples-from: needs --dynamic-examples K")
    progress = not ns.no_progress and os.environ.get("RUBRIC_TESTER_NO_PROGRESS", "") == ""
    return Options(
        lesson_names=ns.lesson_names,
        dataset_name=ns.dataset_name,
        experiment_kind=kind,
        experiment_name=name,
        use_cached=ns.use_cached,
        llm_model=ns.llm_model,
        num_responses=ns.num_responses,
        max_num_students=ns.max_num_students,
        student_ids=ns.student_ids,
        temperature=ns.temperature,
        download=ns.download,
        accuracy=ns.accuracy,
        remove_comments=ns.remove_comments,
        generate_confidence=ns.generate_confidence,
        workers=ns.workers,
        new_labels=ns.new_labels,
        prefer_actual_labels=ns.prefer_actual_labels,
        dry_run=ns.dry_run,
        output_dir=ns.output_dir,
        export_examples=ns.export_examples,
        upload=ns.upload,
        data_root=ns.data_root,
        s3_bucket=ns.s3_bucket,
        s3_prefix=ns.s3_prefix,
        progress=progress,
        timeout=ns.timeout,
        dynamic_examples=ns.dynamic_examples,
        examples_from=ns.examples_from,
    )
