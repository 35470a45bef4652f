"""The rubric tester's orchestration: options -> data -> validation -> run -> statistics -> outputs."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lib.assessment.tester import estimate, gate, report
from lib.assessment.tester.cache import CACHE_DIR, AnswerCache, request_fingerprint
from lib.assessment.tester.data import (
    LABELS_FILE,
    LEGACY_LABELS_FILE,
    DataError,
    LessonData,
    Locator,
    Student,
    load_lesson,
)
from lib.assessment.tester.export import export_example
from lib.assessment.tester.options import (
    DEFAULT_BUCKET,
    DEFAULT_PREFIX,
    Options,
    bucket_name,
    key_prefix,
    parse_options,
)
from lib.assessment.tester.params import LessonParams, apply_overrides
from lib.assessment.tester.runner import (
    Assess,
    BackoffObserver,
    Job,
    Outcome,
    Runner,
    SharedBackoff,
    usage_of,
)
from lib.assessment.tester.s3 import S3Store
from lib.assessment.tester.stats import compute_all
from lib.assessment.types import AssessmentRequest, AssessmentResult
from lib.errors import AIProxyError, InvalidRequestError
from lib.fileio import atomic_write_json

if TYPE_CHECKING:  # imported when used: retrieval (numpy, SQLAlchemy) costs every start 0.4 s
    from lib.assessment.tester.dynamic import ExampleChooser

log = logging.getLogger("rubric_tester")

EXIT_OK = 0
EXIT_GATE = 1
EXIT_INVALID = 2
EXIT_FAILED = 3


@dataclass
class Env:
    """What a run talks to; tests replace any of it."""

    assess: Assess | None = None
    gateway: Any = None
    settings: Any = None
    s3_client: Any = None
    stdout: TextIO = field(default_factory=lambda: sys.stdout)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def build_request(lesson: LessonData, code: str) -> AssessmentRequest:
    p = lesson.params
    return AssessmentRequest(
        code=code,
        prompt=lesson.prompt,
        rubric=lesson.rubric,
        model=p.model,
        examples=lesson.examples,
        remove_comments=p.remove_comments,
        num_responses=p.num_responses,
        temperature=p.temperature,
        response_type="json" if p.response_type == "json" else "tsv",
        lesson=p.lesson,
        code_feature_extractor=p.code_feature_extractor,
    )


def _no_model_call(outcome: Outcome) -> bool:
    """A blank program (or one the code feature extractor answers entirely) gets a static answer."""
    if outcome.result is None:
        return False
    return str(outcome.result.metadata.get("agent") or "").startswith("static")


class RubricTester:
    def __init__(self, options: Options, env: Env) -> None:
        self.o = options
        self.env = env
        self.out = env.stdout
        self.limiter = SharedBackoff()
        self._settings = env.settings
        self._gateway = env.gateway

    # --- collaborators (created lazily so offline/dry runs touch nothing they do not need) ----------
    @property
    def settings(self) -> Any:
        if self._settings is None:
            from lib.settings import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def gateway(self) -> Any:
        if self._gateway is None:
            from lib.providers.gateway import Gateway

            self._gateway = Gateway(self.settings, observer=BackoffObserver(self.limiter))
        return self._gateway

    def store(self) -> S3Store:
        bucket = self.o.s3_bucket or getattr(self.settings, "rubric_tester_s3_bucket", None) or DEFAULT_BUCKET
        prefix = self.o.s3_prefix
        if prefix is None:
            prefix = getattr(self.settings, "rubric_tester_s3_prefix", None)
        if prefix is None:
            prefix = DEFAULT_PREFIX
        # the settings are checked like the options (a key segment like ".." must not get through)
        for what, value, check in (
            ("RUBRIC_TESTER_S3_BUCKET", bucket, bucket_name),
            ("RUBRIC_TESTER_S3_PREFIX", prefix, key_prefix),
        ):
            try:
                check(value)
            except argparse.ArgumentTypeError as exc:
                raise InvalidRequestError(f"{what}: {exc}") from None
        region = getattr(self.settings, "aws_region", None)
        return S3Store(bucket, prefix, client=self.env.s3_client, region=region)

    def assess_fn(self) -> Assess:
        if self.env.assess is not None:
            return self.env.assess
        try:
            from lib.assessment.pipeline import run_assessment
        except ImportError as exc:
            raise InvalidRequestError(f"the assessment pipeline is not available: {exc}") from None
        gateway = self.gateway
        timeout = self.o.timeout

        def assess(request: AssessmentRequest) -> AssessmentResult:
            return run_assessment(gateway, request, deadline=gateway.new_deadline(timeout))

        return assess

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    # --- steps ----------------------------------------------------------------------------------
    def load(self, locator: Locator) -> list[LessonData]:
        o = self.o
        rel = f"{o.experiment_kind}/{o.experiment_name}"
        available = locator.lessons(rel)
        if not available:
            raise DataError(f"{rel}: no lessons found (no <lesson>/params.json)")
        lessons = o.lesson_names or available
        unknown = [name for name in lessons if name not in available]
        if unknown:
            raise DataError(
                f"{rel}: unknown lesson(s) {', '.join(unknown)}; available: {', '.join(available)}"
            )

        def overrides(params: LessonParams) -> LessonParams:
            return apply_overrides(
                params,
                model=o.llm_model,
                num_responses=o.num_responses,
                temperature=o.temperature,
                remove_comments=o.remove_comments,
            )

        loaded = []
        for name in lessons:
            dataset_dir = locator.folder(f"datasets/{o.dataset_name}/{name}")
            before = len(locator.downloaded)
            experiment_dir = locator.folder(f"{rel}/{name}")
            if o.use_cached and len(locator.downloaded) > before and o.output_dir is None:
                # the experiment came from S3: bring its uploaded answers too, so -c re-reports for free
                locator.fetch_optional(f"{rel}/output/{name}", o.data_root / rel / "output" / name)
            lesson = load_lesson(
                name,
                dataset_dir,
                experiment_dir,
                max_num_students=o.max_num_students,
                student_ids=o.student_ids,
                prefer_actual_labels=o.prefer_actual_labels,
                params_transform=overrides,
            )
            self.gateway.resolve(lesson.params.model)  # UnknownModelError before any call
            loaded.append(lesson)
        return loaded

    def output_dir(self, locator: Locator) -> Path:
        o = self.o
        if o.output_dir is not None:
            return o.output_dir
        rel = f"{o.experiment_kind}/{o.experiment_name}"
        if locator.is_bundled(rel):
            return o.data_root / "output" / o.experiment_name
        return o.data_root / rel / "output"

    def jobs(
        self,
        lessons: list[LessonData],
        out_dir: Path,
        examples_for: Callable[[LessonData, Student], tuple[tuple[str, str], ...]] | None = None,
    ) -> list[Job]:
        """One job per student; ``examples_for`` replaces the lesson's fixed examples per student."""
        jobs = []
        for lesson in lessons:
            cache = AnswerCache(out_dir / lesson.lesson / CACHE_DIR)
            for student in lesson.students:
                request = build_request(lesson, student.code)
                if examples_for is not None:
                    request = replace(request, examples=examples_for(lesson, student))
                jobs.append(
                    Job(
                        lesson.lesson,
                        student.id,
                        request,
                        request_fingerprint(request),
                        cache,
                        lesson.key_concepts,
                    )
                )
        return jobs

    def chooser(self, locator: Locator, lessons: list[LessonData], out_dir: Path) -> ExampleChooser:
        """``--dynamic-examples``: the examples' collections, a dataset's ingested first."""
        from lib.assessment.tester import dynamic

        o = self.o
        k = o.dynamic_examples or 1
        source = o.examples_from or o.dataset_name

        def embed(model: str, texts: Any) -> list[list[float]]:
            return list(self.gateway.embed(model, list(texts)).vectors)

        if dynamic.collection_of(source) is not None:
            from lib.store import Store

            names = [lesson.lesson for lesson in lessons]
            return dynamic.collection_chooser(Store.from_settings(self.settings), embed, k, source, names)
        chooser = dynamic.dataset_chooser(out_dir, embed, k, source, source == o.dataset_name)
        model = self.gateway.default_model("embedding")
        try:
            for lesson in lessons:
                pool = load_lesson(
                    lesson.lesson,
                    locator.folder(f"datasets/{source}/{lesson.lesson}"),
                    lesson.experiment_dir,
                    max_num_students=sys.maxsize,
                    student_ids=None,
                    prefer_actual_labels=o.prefer_actual_labels,
                )
                chooser.ingest(pool, model)
        except BaseException:
            chooser.close()
            raise
        return chooser

    def dynamic_jobs(
        self, locator: Locator, lessons: list[LessonData], out_dir: Path
    ) -> tuple[list[Job], dict[str, Any]]:
        """The jobs with each student's nearest examples, and what was chosen: the source, whether
        students were left out of their own examples, and each student's example ids."""
        chosen: dict[str, dict[str, list[str]]] = {lesson.lesson: {} for lesson in lessons}
        chooser = self.chooser(locator, lessons, out_dir)
        about = {
            "k": chooser.k,
            "from": chooser.source,
            "leave_one_out": chooser.leave_one_out,
            "examples": chosen,
        }

        def examples_for(lesson: LessonData, student: Student) -> tuple[tuple[str, str], ...]:
            docs = chooser.choose(lesson.lesson, student)
            chosen[lesson.lesson][student.id] = [doc_id for doc_id, _, _ in docs]
            return tuple((code, answer) for _, code, answer in docs)

        try:
            return self.jobs(lessons, out_dir, examples_for), about
        finally:
            chooser.close()

    def dry_run(self, lessons: list[LessonData], jobs: list[Job]) -> int:
        self.say("Dry run: nothing will be called.")
        total = estimate.Estimate()
        unknown: set[str] = set()
        for lesson in lessons:
            p = lesson.params
            route = self.gateway.resolve(p.model)
            provider = route.provider
            static = estimate.lesson_static_tokens(lesson.prompt, lesson.rubric, lesson.examples)
            e = estimate.Estimate()
            for job in (j for j in jobs if j.lesson == lesson.lesson):
                if self.o.use_cached and job.cache.get(job.student_id, job.fingerprint) is not None:
                    e.cached += 1
                    continue
                if not job.request.code.strip():
                    e.blank += 1
                    continue
                calls, pt, ct = estimate.estimate_assessment(
                    prompt=lesson.prompt,
                    rubric=lesson.rubric,
                    examples=lesson.examples,
                    code=job.request.code,
                    num_key_concepts=len(lesson.key_concepts),
                    num_responses=p.num_responses,
                    native_n=route.spec.native_n,
                    static_tokens=static,
                )
                e.assessments += 1
                e.model_calls += calls
                e.prompt_tokens += pt
                e.completion_tokens += ct
            cost = estimate.cost_usd(p.model, e.prompt_tokens, e.completion_tokens)
            if cost is None:
                unknown.add(p.model)
            self.say(
                f"{lesson.lesson}: {len(lesson.students)} students, model {p.model} ({provider}), "
                f"n={p.num_responses}, temperature={p.temperature}: {e.assessments} assessments, "
                f"{e.model_calls} model calls, {e.cached} cached, {e.blank} blank (no call); "
                f"~{e.prompt_tokens:,} prompt + ~{e.completion_tokens:,} completion tokens, "
                + (f"~${cost:.4f}" if cost is not None else "cost unknown (no price for this model)")
            )
            total.assessments += e.assessments
            total.model_calls += e.model_calls
            total.cached += e.cached
            total.blank += e.blank
            total.prompt_tokens += e.prompt_tokens
            total.completion_tokens += e.completion_tokens
            if cost is not None and total.cost_usd is not None:
                total.cost_usd += cost
        self.say(
            f"Total: {total.assessments} assessments, {total.model_calls} model calls, "
            f"~{total.total_tokens:,} tokens, ~${total.cost_usd or 0:.4f}"
            + (f" plus unpriced model(s): {', '.join(sorted(unknown))}" if unknown else "")
            + ". Estimates use the cl100k_base tokenizer; prices: lib/providers/*/spec.py."
        )
        return EXIT_OK

    def totals(self, runner: Runner, outcomes: list[Outcome]) -> dict[str, Any]:
        t = runner.totals
        answer_prompt = answer_completion = 0
        answer_cost = 0.0
        for o in outcomes:
            if o.result is None:
                continue
            pt, ct = usage_of(o.result)
            answer_prompt += pt
            answer_completion += ct
            answer_cost += estimate.cost_usd(str(o.result.metadata.get("model") or ""), pt, ct) or 0.0
        return {
            "assessments": len(outcomes),
            "called": sum(1 for o in outcomes if not o.cached and not _no_model_call(o)),
            "no_model_call": sum(1 for o in outcomes if not o.cached and _no_model_call(o)),
            "cached": sum(1 for o in outcomes if o.cached),
            "errors": sum(1 for o in outcomes if not o.ok),
            "prompt_tokens": t.prompt_tokens,
            "completion_tokens": t.completion_tokens,
            "total_tokens": t.total_tokens,
            "cost_usd": round(t.cost_usd, 6),
            "answer_total_tokens": answer_prompt + answer_completion,
            "answer_cost_usd": round(answer_cost, 6),
            "unpriced_models": sorted(t.unpriced_models),
            "latency": report.latency_summary(outcomes),
            "rate_limits": self.limiter.rate_limits,
            "backoff_s": round(self.limiter.waited_s, 3),
        }

    def thresholds_path(self, locator: Locator, lessons: list[LessonData]) -> Path:
        if self.o.accuracy:
            return Path(self.o.accuracy)
        candidates = [lessons[0].experiment_dir.parent / "accuracy_thresholds.json"] if lessons else []
        candidates.append(self.o.data_root / "accuracy_thresholds.json")
        for c in candidates:
            if c.is_file():
                return c
        raise InvalidRequestError(
            "-a: no thresholds file given and none found at " + " or ".join(str(c) for c in candidates)
        )

    def run(self, argv_text: str) -> int:
        o = self.o
        started = time.monotonic()
        started_at = _now()
        locator = Locator(o.data_root, self.store, download=o.download)
        if o.upload and locator.is_bundled(f"{o.experiment_kind}/{o.experiment_name}"):
            raise InvalidRequestError("--upload: refusing to upload the bundled sample experiment")
        lessons = self.load(locator)
        for line in locator.downloaded:
            self.say(f"downloaded {line}")
        thresholds = (
            gate.load_thresholds(self.thresholds_path(locator, lessons)) if o.accuracy is not None else None
        )
        out_dir = self.output_dir(locator)
        jobs = self.jobs(lessons, out_dir)
        if o.dry_run:
            if o.dynamic_examples:
                self.say(
                    f"--dynamic-examples {o.dynamic_examples}: each student is assessed a second time with "
                    "its nearest examples (not estimated below: choosing them needs embeddings)."
                )
            return self.dry_run(lessons, jobs)
        dyn_jobs: list[Job] = []
        about: dict[str, Any] = {}
        if o.dynamic_examples:
            dyn_jobs, about = self.dynamic_jobs(locator, lessons, out_dir)
        assess = self.assess_fn()
        self.say(
            f"Assessing {len(jobs)} student programs in {len(lessons)} lesson(s) with {o.workers} workers "
            f"(output: {out_dir})"
        )
        runner = Runner(
            assess, workers=o.workers, use_cached=o.use_cached, limiter=self.limiter, progress=o.progress
        )
        everything = runner.run(jobs + dyn_jobs)
        outcomes, dyn_outcomes = everything[: len(jobs)], everything[len(jobs) :]

        concepts: dict[str, Sequence[str]] = {lesson.lesson: lesson.key_concepts for lesson in lessons}
        stats = compute_all(report.predictions_from(lessons, outcomes), concepts)
        comparison = None
        if o.dynamic_examples:
            from lib.assessment.tester.dynamic import side_by_side

            dyn_stats = compute_all(report.predictions_from(lessons, dyn_outcomes), concepts)
            comparison = {
                **about,
                "side_by_side": side_by_side(stats, dyn_stats),
                "statistics": dyn_stats,
                "assessments": len(dyn_outcomes),
                "cached": sum(1 for x in dyn_outcomes if x.cached),
                "errors": report.error_list(dyn_outcomes),
            }
        run_info = {
            "command": argv_text,
            "dataset": o.dataset_name,
            "experiment_kind": o.experiment_kind.rstrip("s"),
            "experiment": o.experiment_name,
            "lessons": [lesson.lesson for lesson in lessons],
            "students_per_lesson": [f"{lesson.lesson}: {len(lesson.students)}" for lesson in lessons],
            "params": {lesson.lesson: lesson.params.as_dict() for lesson in lessons},
            "examples": {lesson.lesson: list(lesson.example_ids) for lesson in lessons},
            "workers": o.workers,
            "use_cached": o.use_cached,
            "started_at": started_at,
            "finished_at": _now(),
            "duration_s": round(time.monotonic() - started, 3),
        }
        totals = self.totals(runner, outcomes)
        if dyn_outcomes:
            totals["errors_with_dynamic_examples"] = sum(1 for x in dyn_outcomes if not x.ok)
        paths = report.write_outputs(
            out_dir,
            run=run_info,
            totals=totals,
            stats=stats,
            lessons=lessons,
            outcomes=outcomes,
            dynamic=comparison,
            dynamic_outcomes=dyn_outcomes,
        )

        if o.generate_confidence:
            for lesson in lessons:
                folder = lesson.experiment_dir
                if locator.is_bundled(f"{o.experiment_kind}/{o.experiment_name}"):
                    folder = out_dir / lesson.lesson
                ls = stats["lessons"][lesson.lesson]
                atomic_write_json(folder / "confidence.json", gate.pass_fail_confidence(ls))
                atomic_write_json(folder / "confidence-exact.json", gate.exact_confidence(ls))
                self.say(f"wrote {folder / 'confidence.json'} and {folder / 'confidence-exact.json'}")

        if o.export_examples is not None:
            by_key = {(x.lesson, x.student_id): x for x in outcomes}
            count = 0
            for lesson in lessons:
                for student in lesson.students:
                    x = by_key.get((lesson.lesson, student.id))
                    if x is not None and x.result is not None:
                        export_example(
                            o.export_examples / lesson.lesson,
                            student.id,
                            student.code,
                            x.result.data,
                            lesson.params.response_type,
                        )
                        count += 1
            self.say(f"exported {count} examples to {o.export_examples}")

        if o.new_labels:
            for lesson in lessons:
                path, written, left_out = report.write_new_labels(out_dir / lesson.lesson, lesson, outcomes)
                self.say(
                    f"wrote {path} ({written} students"
                    + (f"; {left_out} failed and left out" if left_out else "")
                    + ")"
                )
                legacy = lesson.dataset_dir / LEGACY_LABELS_FILE
                if (
                    legacy.is_file()
                    and not o.prefer_actual_labels
                    and (lesson.dataset_dir / LABELS_FILE).is_file()
                ):
                    self.say(
                        f"note: {lesson.lesson}'s human labels were read from {LEGACY_LABELS_FILE}; "
                        f"--prefer-actual-labels reads {LABELS_FILE} instead (what --new-labels did "
                        "before it took Code.org's meaning)"
                    )

        self.print_summary(stats, totals, paths, outcomes)
        if comparison is not None:
            self.print_comparison(comparison, paths["dynamic_predictions"])

        if o.upload:
            self.upload(locator, out_dir)

        if totals["assessments"] and totals["errors"] == totals["assessments"]:
            self.say(
                "FAILED: every assessment failed "
                f"(first error: {outcomes[0].error_kind}: {outcomes[0].error_message})"
            )
            return EXIT_FAILED
        if thresholds is not None:
            failures = gate.check_thresholds(stats, thresholds)
            if failures:
                self.say("Accuracy gate FAILED:")
                for f in failures:
                    self.say(f"  {f}")
                return EXIT_GATE
            self.say("Accuracy gate PASSED")
        return EXIT_OK

    def print_comparison(self, comparison: dict[str, Any], predictions: Path) -> None:
        """Fixed vs dynamic examples, per lesson and overall (per key concept in report.html)."""

        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x * 100:.1f}%"

        how = " (leave-one-out)" if comparison["leave_one_out"] else ""
        self.say(
            f"Examples: fixed vs the {comparison['k']} nearest from {comparison['from']}{how}; "
            f"{len(comparison['errors'])} of {comparison['assessments']} dynamic-example assessments failed"
        )
        for row in comparison["side_by_side"]:
            if row["level"] > 1:
                continue
            f, d = row["fixed"], row["dynamic"]
            self.say(
                f"  {row['scope']}: exact {pct(f['exact'])} -> {pct(d['exact'])}, "
                f"pass/fail {pct(f['pass_fail'])} -> {pct(d['pass_fail'])} (n {f['n']} / {d['n']})"
            )
        self.say(f"Dynamic-example predictions: {predictions}")

    def upload(self, locator: Locator, out_dir: Path) -> None:
        o = self.o
        rel = f"{o.experiment_kind}/{o.experiment_name}"
        if locator.is_bundled(rel):
            raise InvalidRequestError("--upload: refusing to upload the bundled sample experiment")
        root = o.data_root / rel
        store = locator.store
        count = store.upload_folder(root, rel)
        resolved_root = root.resolve()
        if resolved_root not in out_dir.resolve().parents:
            count += store.upload_folder(out_dir, f"{rel}/output")
        self.say(f"uploaded {count} files to {store.url(rel)}")

    def print_summary(
        self,
        stats: dict[str, Any],
        totals: dict[str, Any],
        paths: dict[str, Path],
        outcomes: list[Outcome],
    ) -> None:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x * 100:.1f}%"

        def students(n: int) -> str:
            return f"{n} student{'' if n == 1 else 's'}"

        failed: dict[str, list[Outcome]] = {}
        for o in outcomes:
            if not o.ok:
                failed.setdefault(o.lesson, []).append(o)
        for lesson, ls in stats["lessons"].items():
            m = ls["overall"]
            assessed = sum(1 for o in outcomes if o.lesson == lesson)
            self.say(
                f"{lesson}: exact {pct(m['exact']['rate'])}, pass/fail {pct(m['pass_fail']['rate'])} "
                f"over {m['n']} labels; {len(failed.get(lesson, []))} of {students(assessed)} failed"
            )
            for kc, km in ls["key_concepts"].items():
                self.say(
                    f"    {kc}: exact {pct(km['exact']['rate'])}, pass/fail {pct(km['pass_fail']['rate'])}"
                )
        m = stats["overall"]
        static = ""
        if totals["no_model_call"]:
            static = (
                f", {totals['no_model_call']} answered without a model call "
                "(blank program, or code feature extractor only)"
            )
        self.say(
            f"Overall: exact {pct(m['exact']['rate'])}, pass/fail {pct(m['pass_fail']['rate'])}; "
            f"{students(totals['assessments'])}: {totals['called']} called the model{static}, "
            f"{totals['cached']} cached, {totals['errors']} failed; "
            f"{totals['total_tokens']:,} tokens, ${totals['cost_usd']:.4f}"
        )
        if failed:
            self.say(f"Failed ({students(totals['errors'])}, excluded from accuracy):")
            for lesson, items in failed.items():
                for o in sorted(items, key=lambda x: report.natural_key(x.student_id)):
                    self.say(f"  {lesson}/{o.student_id}: {o.error_kind}: {o.error_message}")
            self.say(
                "Rerun the same command with -c to retry only the failed students "
                "(every successful answer is cached and reused)."
            )
        self.say(f"Report: {paths['report']}")
        self.say(f"Summary: {paths['summary']}  Predictions: {paths['predictions']}")


def run(argv: list[str] | None = None, env: Env | None = None) -> int:
    env = env or Env()
    try:
        options = parse_options(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_INVALID
    argv_list = sys.argv[1:] if argv is None else argv
    argv_text = "rubric_tester.py " + shlex.join(argv_list)
    tester = RubricTester(options, env)
    try:
        return tester.run(argv_text)
    except InvalidRequestError as exc:  # includes DataError, ParamsError, UnknownModelError
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except AIProxyError as exc:
        print(f"error ({exc.kind}): {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: every finished answer is cached; rerun with -c to continue", file=sys.stderr)
        return 130


def _configure_logging() -> None:
    level = "WARNING"
    try:
        from lib.settings import load_settings

        level = load_settings().log_level
    except Exception:  # noqa: BLE001 - a bad setting is reported later, when it matters
        level = "WARNING"
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=max(logging.WARNING, logging.getLevelName(level)) if level == "INFO" else level,
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None, *, configure_logging: Callable[[], None] = _configure_logging) -> int:
    configure_logging()
    return run(argv)
