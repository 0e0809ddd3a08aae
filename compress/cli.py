"""The `compress` command line (typer).  Each command is a thin shell over one module.

Every flag that is also a recipe field is applied through `Recipe.with_overrides`, i.e. validated by the same
pydantic model as a recipe file; its `[default: ...]` in `--help` is read from that model, so a default is
defined once.  Exit statuses (`compress.errors`): 0 ok, 1 internal error, 2 user error, 3 no variant qualified.
"""
from __future__ import annotations

import contextlib
import enum
import errno
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import click
import typer
from edge_compress.compress.console import error, set_verbosity
from edge_compress.compress.errors import NO_SELECTION, USER_ERROR, CompressError
from edge_compress.compress.ranks import is_main_process
from edge_compress.compress.recipe import StaticSpec, default_of
from edge_compress.compress.tasks import TASK_NAMES
from rich.markup import escape

app = typer.Typer(help="Compress a fine-tuned Hugging Face transformer into a small, fast, validated ONNX model.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich")

CalibMethod = enum.Enum("CalibMethod", {m: m for m in get_args(StaticSpec.model_fields["calibration_method"].annotation)},
                        type=str)
TaskName = enum.Enum("TaskName", {name: name for name in TASK_NAMES}, type=str)
LogLevel = enum.Enum("LogLevel", {n: n for n in ("error", "warning", "info", "debug")}, type=str)
TARGET_NAMES = ("cpu", "cuda", "tensorrt", "mobile")
Precision = enum.Enum("Precision", {n: n for n in ("int8", "int4", "fp16")}, type=str)
Device = enum.Enum("Device", {n: n for n in ("cpu", "cuda")}, type=str)
Executor = enum.Enum("Executor", {n: n for n in ("process", "inline", "ray")}, type=str)
DEMO_CACHE = Path(os.environ.get("EDGE_COMPRESS_CACHE", Path.home() / ".cache" / "edge-compress"))


def _h(text: str) -> str:
    """Help text is rich markup in typer: escape it, so `[...]` in it is printed, not eaten."""
    return escape(text)


def _d(path: str) -> str:
    """The recipe's default for `path`, as `--help` shows it."""
    value = default_of(path)
    return "null" if value is None else str(value)


def _fail(err: CompressError) -> None:
    error(err.message, err.hint)
    raise typer.Exit(USER_ERROR)


def _internal(err: Exception) -> None:
    """A bug's one-line summary first (the traceback that follows can be long), then exit 1 with the traceback."""
    first = (str(err).strip().splitlines() or [""])[0]
    error(f"internal error: {type(err).__name__}: {first}", "this is a bug in edge-compress: please report it with the "
                                                            "traceback below")


def _command(body: Callable[..., Any]) -> Callable[..., Any]:
    """User errors (and a full or read-only disk, wherever it shows up) print `error:`/`fix:` and exit 2;
    anything else is a bug and keeps its traceback (exit 1)."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from edge_compress.compress.outputs import storage_error

        try:
            return body(*args, **kwargs)
        except CompressError as err:
            _fail(err)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS):
                _internal(err)
                raise
            _fail(storage_error(err, Path(kwargs.get("out") or err.filename or ".")))
        except Exception as err:
            if not isinstance(err, (click.exceptions.Exit, click.exceptions.Abort, click.ClickException)):
                _internal(err)  # typer.Exit (a status) and click's own usage errors are not bugs
            raise

    return wrapper


def _version(value: bool) -> None:
    if value:
        from edge_compress.compress import __version__

        typer.echo(f"edge-compress {__version__}")  # stdout, like every --version
        raise typer.Exit()


def _terminate(signum: int, frame: object) -> None:  # pragma: no cover - exercised by a killed subprocess
    """SIGTERM runs the same cleanup as Ctrl-C: the staging folder is removed and the --out lock released."""
    raise SystemExit(128 + signum)


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors (same as --log-level warning)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also the libraries' info messages (same as --log-level info)."),
    log_level: LogLevel | None = typer.Option(None, "--log-level", help=_h(
        "error, warning, info or debug: for compress's own lines and, through their own log controls, transformers, "
        "onnxruntime and torch [default: info for compress, warning for the libraries]")),
) -> None:
    """Compress a fine-tuned Hugging Face transformer into a small, fast, validated ONNX model."""
    if quiet and verbose:
        _fail(CompressError("--quiet and --verbose contradict each other", "pass at most one of them"))
    level = log_level.value if log_level else "warning" if quiet or not is_main_process() else "info" if verbose else None
    set_verbosity(level)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


@contextlib.contextmanager
def _guarded(out: Path, force: bool, inputs: list[Any]) -> Iterator[None]:
    """Lock --out for the whole command and check it against the inputs before any slow step."""
    from edge_compress.compress.outputs import check_target, output_lock

    with output_lock(out, " ".join(sys.argv)):
        check_target(out, force, inputs)
        yield


RUN_FLAGS = {"max_accuracy_drop": "--max-accuracy-drop", "validate.threads": "--threads", "seed": "--seed",
             "quantize.static.calibration_method": "--calib-method", "task": "--task", "targets": "--target",
             "package.ort_format": "--package-mobile", "package.fixed_shape": "--fixed-shape", "precisions": "--precision",
             "export.opset": "--opset", "optimize.enabled": "--no-optimize", "search": "--search", "search.executor": "--executor",
             "resume": "--no-resume"}


@app.command()
@_command
def run(
    model: str | None = typer.Argument(None, show_default=False, help=(
        "Fine-tuned checkpoint folder (config.json, tokenizer, weights), or a hub id when online. "
        "May be left out with --recipe OUT/recipe.yaml of an earlier run, which names its model and data.")),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: variants/, report.json, report.md, report.html."),
    eval_data: str | None = typer.Option(None, "--eval-data", show_default=False, help=_h(
        "Labelled eval set: .csv, .tsv or .jsonl file, or a `datasets` name[:config[:split]] (the recipe's data.eval when left out).")),
    text_column: str | None = typer.Option(None, help="Column holding the text (default: guess text/sentence/content/...)."),
    label_column: str | None = typer.Option(None, help="Column holding the label: ids, or names from the model's label2id (default: guess label/intent/...)."),
    calib_data: str | None = typer.Option(None, help="Texts for static-int8 calibration (default: train.* beside the eval file, else the eval texts)."),
    recipe: Path | None = typer.Option(None, help="Recipe YAML (see README); flags below override its fields."),
    max_accuracy_drop: float | None = typer.Option(None, show_default=_d("max_accuracy_drop"),
                                                      help="Accuracy points a variant may lose and still be selected."),
    threads: int | None = typer.Option(None, show_default="all cores, at most 4", help="Intra-op threads for every latency measurement."),
    calib_method: CalibMethod | None = typer.Option(None, show_default=_d("quantize.static.calibration_method"),
                                                       help="Static int8 calibration method."),
    task: TaskName | None = typer.Option(None, show_default=_d("task"), help="What the model does (the recipe's task: when not given)."),
    target: str | None = typer.Option(None, show_default=",".join(default_of("targets")),
                                         autocompletion=lambda incomplete: [t for t in TARGET_NAMES if t.startswith(incomplete)],
                                         help=_h(f"Where to validate, comma-separated from {', '.join(TARGET_NAMES)}; "
                                                 "the first available one decides the selection.")),
    package_mobile: bool = typer.Option(False, "--package-mobile", help="Package the selected variant in ORT format with the reduced-operator build config (package/)."),
    fixed_shape: str | None = typer.Option(None, help="Also package a fixed-shape model BATCH,SEQUENCE (e.g. 1,128) for NPUs/delegates."),
    seed: int | None = typer.Option(None, show_default=_d("seed"), help="Seed of calibration sampling and every random choice of QAT and distillation."),
    precision: list[Precision] | None = typer.Option(None, metavar="int8|int4|fp16", show_default="every precision the task offers", help=(
        "Build only variants of this precision (repeat for several: --precision int8 --precision int4); "
        "the fp32 export and its fused graph are always built.")),
    device: Device | None = typer.Option(None, show_default="cpu", help=(
        "Shortcut for --target: cpu, or cuda (= --target cuda,cpu: selection on the GPU, CPU figures alongside).")),
    opset: int | None = typer.Option(None, show_default="the exporter's default", help="ONNX opset of the export (14 or newer)."),
    no_optimize: bool = typer.Option(False, "--no-optimize", help=(
        "Skip the ONNX Runtime-fused fp32 graph (attention, LayerNorm, GELU fusions); variants then start from the plain export.")),
    search: bool = typer.Option(False, "--search", help=(
        "Also search per-layer mixed precision within the budget (onnx-int8-searched; onnx-int4-searched for causal LMs): "
        "sensitivity of every MatMul, then greedy + bisection, each step measured (recipe search:).")),
    executor: Executor | None = typer.Option(None, show_default="process", help=(
        "Where --search runs its candidates: a local process pool, inline, or a Ray cluster (pip install 'edge-compress[ray]').")),
    force: bool = typer.Option(False, "--force", help="Replace --out if it holds an earlier compress result (nothing else)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run code shipped with the checkpoint (only for checkpoints you trust)."),
    no_resume: bool = typer.Option(False, "--no-resume", help=(
        "Build everything again instead of reusing the finished steps a killed or interrupted run on this --out left.")),
) -> None:
    """Export, quantize and validate MODEL; write a report and select the fastest variant within budget.

    Text classifiers: accuracy-scored fp32, fused, int8 dynamic and int8 static variants (plus a pruned line when the
    recipe has prune:, and an onnx-int8-qat variant per line when it has qat:).  Causal LMs (--task causal-lm, eval
    data = plain text): KV-cache export, int8 and int4 variants scored by perplexity (the budget is then in perplexity
    points), token agreement and generation speed; prune: adds a pruned line (KV groups, FFN neurons).  Translation (--task translation, eval data = source/target
    pairs; without targets, agreement with the float model only): encoder + decoder-with-cache export, int8 dynamic and
    static of both graphs, scored by BLEU/chrF, exact match with the float model, encoder ms and decode ms/token.
    Exit status 3: the run finished, but no variant qualified.
    """
    import json

    from edge_compress.compress.recipe import load_recipe
    from edge_compress.compress.run.pipeline import RunOptions, options_from_recipe
    from edge_compress.compress.run.pipeline import run as run_pipeline
    from edge_compress.compress.run.targets import parse_fixed_shape, parse_targets

    if target is not None and device is not None:
        _fail(CompressError("--target and --device both say where to validate", "pass one of them"))
    if (model is None) != (eval_data is None):
        _fail(CompressError("MODEL and --eval-data go together", "pass both, or neither with --recipe OUT/recipe.yaml of an earlier run"))
    if model is None and recipe is None:
        _fail(CompressError("no MODEL given", "pass MODEL and --eval-data, or --recipe OUT/recipe.yaml of an earlier run"))
    targets = parse_targets(target) if target is not None else ["cuda", "cpu"] if device and device.value == "cuda" else \
        ["cpu"] if device else None
    with _guarded(out, force, [model, eval_data, calib_data, recipe]):
        spec = load_recipe(str(recipe) if recipe else None)
        shape = parse_fixed_shape(fixed_shape) if fixed_shape is not None else None
        spec = spec.with_overrides({
            "max_accuracy_drop": max_accuracy_drop, "validate.threads": threads, "seed": seed,
            "quantize.static.calibration_method": calib_method.value if calib_method else None,
            "task": task.value if task else None, "targets": targets,
            "package.ort_format": True if package_mobile else None,
            "package.fixed_shape": {"batch": shape[0], "sequence": shape[1]} if shape else None,
            "precisions": [p.value for p in precision] if precision else None, "export.opset": opset,
            "optimize.enabled": False if no_optimize else None, "search": {} if (search or executor) and spec.search is None else None,
            "search.executor": executor.value if executor else None, "resume": False if no_resume else None}, RUN_FLAGS)
        if model is None:
            options = options_from_recipe(spec, out, force)
            options.trust_remote_code = trust_remote_code
        else:
            options = RunOptions(model, out, eval_data, text_column, label_column, calib_data, force, trust_remote_code)
        run_pipeline(options, spec)
    if not is_main_process():  # a distributed launch's other processes: the main one writes and reports
        return
    report = json.loads((out / "report.json").read_text())
    if report.get("selected") is None:
        error(f"no variant qualified: {report.get('selection_reason', '')}; every result is in {out / 'report.json'}",
              "raise --max-accuracy-drop, or look at the report for what failed; exit status 3 means exactly this")
        raise typer.Exit(NO_SELECTION)


PRUNE_FLAGS = {"prune.head_fraction": "--heads", "prune.ffn_fraction": "--ffn", "prune.flops_budget": "--flops-budget",
               "prune.params_budget": "--params-budget", "prune.num_calib_batches": "--calib-batches", "distill.epochs": "--distill-epochs",
               "task": "--task"}


@app.command()
@_command
def prune(
    model: str = typer.Argument(..., help="Fine-tuned classifier (or, with --task causal-lm, decoder LM) checkpoint folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the pruned checkpoint (loadable by `compress run`)."),
    calib_data: str = typer.Option(..., "--calib-data", help="Texts (labels used when present) scoring head/neuron importance and, with --distill-epochs, training the pruned model."),
    heads: float | None = typer.Option(None, help="Fraction of all attention heads to remove, e.g. 0.5."),
    ffn: float | None = typer.Option(None, help="Fraction of all FFN neurons to remove, e.g. 0.5."),
    flops_budget: float | None = typer.Option(None, help="Fraction of FLOPs to keep, e.g. 0.6 (the search decides per layer)."),
    params_budget: float | None = typer.Option(None, help="Fraction of parameters to keep."),
    prune_layers: bool = typer.Option(False, "--prune-layers", help="Allow dropping whole layers."),
    no_mask_tuning: bool = typer.Option(False, "--no-mask-tuning", help="Skip least-squares mask tuning (faster, less accurate)."),
    calib_batches: int | None = typer.Option(None, show_default=_d("prune.num_calib_batches"),
                                                help=f"Calibration batches of {_d('prune.batch_size')} texts for importance scores."),
    distill_epochs: float | None = typer.Option(None, help="Recover accuracy by distilling the float model for this many epochs."),
    text_column: str | None = typer.Option(None, help="Column holding the text."),
    label_column: str | None = typer.Option(None, help="Column holding the label."),
    task: TaskName | None = typer.Option(None, show_default=_d("task"), help="What the model does (causal-lm: scored by its next-token loss on --calib-data text)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it holds an earlier compress result (nothing else)."),
) -> None:
    """Remove attention heads, FFN neurons (and layers) physically, scored on --calib-data; optionally distill."""
    from edge_compress.compress.recipe import Recipe
    from edge_compress.compress.run.prune_stage import prune_checkpoint

    if all(v is None for v in (heads, ffn, flops_budget, params_budget)):
        raise CompressError("nothing to prune: no target given", "pass --heads, --ffn (fractions to remove), --flops-budget "
                                                                 "or --params-budget (fractions to keep)")
    with _guarded(out, force, [model, calib_data]):
        recipe = Recipe().with_overrides({
            "prune.head_fraction": heads, "prune.ffn_fraction": ffn, "prune.flops_budget": flops_budget,
            "prune.params_budget": params_budget, "prune.prune_layers": True if prune_layers else None,
            "prune.mask_tuning": False if no_mask_tuning else None, "prune.num_calib_batches": calib_batches,
            "distill.epochs": distill_epochs, "task": task.value if task else None}, PRUNE_FLAGS)
        prune_checkpoint(model, out, calib_data, recipe, force, text_column, label_column)


QAT_FLAGS = {"qat.epochs": "--epochs", "qat.max_steps": "--max-steps", "qat.learning_rate": "--learning-rate",
             "qat.batch_size": "--batch-size", "qat.label_weight": "--label-weight", "seed": "--seed"}


@app.command()
@_command
def qat(
    model: str = typer.Argument(..., help="Fine-tuned classifier checkpoint folder (a pruned one from `compress prune` too)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the int8 ONNX model (onnxruntime and ExportedModel load it)."),
    data: str = typer.Option(..., "--data", help="Training texts (.csv/.tsv/.jsonl); labels are used when --label-weight > 0 and present."),
    epochs: float | None = typer.Option(None, show_default=_d("qat.epochs"), help="Training epochs (distillation from the float model)."),
    max_steps: int | None = typer.Option(None, show_default=_d("qat.max_steps"), help="Stop after this many steps (overrides --epochs)."),
    learning_rate: float | None = typer.Option(None, show_default=_d("qat.learning_rate"), help="Learning rate for weights and quantization ranges."),
    batch_size: int | None = typer.Option(None, show_default=_d("qat.batch_size"), help="Training batch size."),
    label_weight: float | None = typer.Option(None, show_default=_d("qat.label_weight"),
                                                 help="Weight of the labels' cross-entropy beside the distillation loss."),
    seed: int | None = typer.Option(None, show_default=_d("seed"), help="Seed of calibration, data order and initialization."),
    recipe: Path | None = typer.Option(None, help="Recipe YAML whose qat: section is used; the flags above override its fields."),
    text_column: str | None = typer.Option(None, help="Column holding the text."),
    label_column: str | None = typer.Option(None, help="Column holding the label."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it holds an earlier compress result (nothing else)."),
) -> None:
    """Quantization-aware training: int8 fake quantization (ONNX Runtime's exact arithmetic), activation ranges
    calibrated then learned, trained to match the float model; exported as an int8 graph that runs integer kernels."""
    from edge_compress.compress.commands.qat import qat_checkpoint
    from edge_compress.compress.recipe import load_recipe

    with _guarded(out, force, [model, data, recipe]):
        spec = load_recipe(str(recipe) if recipe else None)
        spec = spec.with_overrides({"qat": {} if spec.qat is None else None, "qat.epochs": epochs, "qat.max_steps": max_steps,
                                    "qat.learning_rate": learning_rate, "qat.batch_size": batch_size,
                                    "qat.label_weight": label_weight, "seed": seed}, QAT_FLAGS)
        qat_checkpoint(model, out, data, spec, force, text_column, label_column)


@app.command()
@_command
def generate(
    path: Path = typer.Argument(..., help="A `compress run --task causal-lm` or `--task translation` OUT folder (its selected variant is used) or a variant folder."),
    prompt: str = typer.Argument(..., help="Text to continue (translation: the source sentence)."),
    max_new_tokens: int = typer.Option(64, help="Tokens to generate."),
    threads: int | None = typer.Option(None, show_default="all cores, at most 4", help="Intra-op threads."),
    sample: bool = typer.Option(False, "--sample", help="Sample instead of greedy decoding."),
    temperature: float = typer.Option(0.8, help="Sampling temperature (with --sample), > 0."),
    beams: int | None = typer.Option(None, show_default="as the run scored", help="Translation: beam search with N beams (1: greedy)."),
) -> None:
    """Run a compressed causal LM on PROMPT, streaming tokens as they are generated; a translation model translates PROMPT."""
    from edge_compress.compress.commands.generate import generate as generate_text

    generate_text(path, prompt, max_new_tokens, threads, greedy=not sample, temperature=temperature, num_beams=beams)


@app.command()
@_command
def answer(
    path: Path = typer.Argument(..., help="A `compress run --task question-answering` OUT folder (its selected variant is used) or a variant folder."),
    question: str = typer.Option(..., "--question", help="The question."),
    context: str = typer.Option(..., "--context", help="The passage to answer from; one longer than the model's window is read in overlapping windows (qa.doc_stride), not truncated."),
    threads: int | None = typer.Option(None, show_default="all cores, at most 4", help="Intra-op threads."),
) -> None:
    """Answer --question from --context with a compressed extractive-QA model: prints the span, then where it is."""
    from edge_compress.compress.commands.answer import answer as answer_question
    from edge_compress.compress.console import console

    prediction, windows = answer_question(path, question, context, threads)
    typer.echo(prediction.text)
    where = f"characters {prediction.start}-{prediction.end}" if prediction.start >= 0 else "no answer in the context"
    console.print(f"[dim]{where}, score {prediction.score:.2f}, {windows} window{'s' if windows > 1 else ''}[/]")


@app.command()
@_command
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Output folder for the report."),
    cache: Path = typer.Option(DEMO_CACHE,
                               help="Where the fine-tuned demo model is cached between runs."),
    threads: int | None = typer.Option(None, show_default="all cores, at most 4", help="Intra-op threads for latency."),
) -> None:
    """Fine-tune the bundled all-MiniLM-L6-v2 on the project's intent set (cached), then run `compress run` on it."""
    from edge_compress.compress.commands.demo import run_demo

    with _guarded(out, True, [cache]):
        run_demo(out, cache, threads)


def main() -> None:  # pragma: no cover - `python -m edge_compress`
    app(prog_name="compress")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
