"""The `compress` command line (typer).  Each command is a thin shell over one module."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from compress.console import console
from compress.errors import CompressError

app = typer.Typer(help="Compress a fine-tuned Hugging Face transformer into a small, fast, validated ONNX model.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _fail(err: CompressError) -> None:
    console.print(f"[bold red]error:[/] {err.message}")
    if err.hint:
        console.print(f"[bold]fix:[/] {err.hint}")
    raise typer.Exit(2)


@app.command()
def run(
    model: str = typer.Argument(..., help="Fine-tuned checkpoint folder (config.json, tokenizer, weights), or a hub id when online."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: variants/, report.json, report.md, report.png."),
    eval_data: str = typer.Option(..., "--eval-data", help="Labelled eval set: .csv, .tsv or .jsonl file, or a `datasets` name[:config[:split]]."),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text (default: guess text/sentence/content/...)."),
    label_column: Optional[str] = typer.Option(None, help="Column holding the label: ids, or names from the model's label2id (default: guess label/intent/...)."),
    calib_data: Optional[str] = typer.Option(None, help="Texts for static-int8 calibration (default: train.* beside the eval file, else the eval texts)."),
    recipe: Optional[Path] = typer.Option(None, help="Recipe YAML (see README); flags below override it."),
    max_accuracy_drop: Optional[float] = typer.Option(None, help="Accuracy points a variant may lose and still be selected [default: 1.0]."),
    threads: Optional[int] = typer.Option(None, help="Intra-op threads for every latency measurement [default: all cores, at most 4]."),
    calib_method: Optional[str] = typer.Option(None, help="Static int8 calibration: minmax, entropy or percentile [default: percentile, 99.99]."),
    task: Optional[str] = typer.Option(None, help="text-classification or causal-lm [default: the recipe's, else text-classification]."),
    target: Optional[str] = typer.Option(None, help="Where to validate, comma-separated: cpu, cuda, tensorrt, mobile; the first available one decides the selection [default: cpu]."),
    package_mobile: bool = typer.Option(False, "--package-mobile", help="Package the selected variant in ORT format with the reduced-operator build config (package/)."),
    fixed_shape: Optional[str] = typer.Option(None, help="Also package a fixed-shape model BATCH,SEQUENCE (e.g. 1,128) for NPUs/delegates."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it already holds results."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run code shipped with the checkpoint (only for checkpoints you trust)."),
) -> None:
    """Export, quantize and validate MODEL; write a report and select the fastest variant within budget.

    Text classifiers: accuracy-scored fp32, fused, int8 dynamic and int8 static variants (plus a pruned line when the
    recipe has prune:, and an onnx-int8-qat variant per line when it has qat:).  Causal LMs (--task causal-lm, eval
    data = plain text): KV-cache export, int8 and int4 variants scored by perplexity (the budget is then in perplexity
    points), token agreement and generation speed.
    """
    from compress.run.pipeline import RunOptions
    from compress.run.pipeline import run as run_pipeline
    from compress.recipe import load_recipe

    try:
        spec = load_recipe(str(recipe) if recipe else None)
        overrides = {"max_accuracy_drop": max_accuracy_drop, "task": task}
        spec = spec.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        if threads is not None:
            spec.validate_.threads = threads
        if calib_method is not None:
            if calib_method not in ("minmax", "entropy", "percentile"):
                raise CompressError(f"unknown --calib-method '{calib_method}'", "use minmax, entropy or percentile")
            spec.quantize.static.calibration_method = calib_method  # type: ignore[assignment]
        _apply_target_flags(spec, target, package_mobile, fixed_shape)
        run_pipeline(RunOptions(model, out, eval_data, text_column, label_column, calib_data, force, trust_remote_code), spec)
    except CompressError as err:
        _fail(err)


def _apply_target_flags(spec, target: str | None, package_mobile: bool, fixed_shape: str | None) -> None:
    from compress.recipe import FixedShapeSpec
    from compress.run.targets import parse_fixed_shape, parse_targets

    if target is not None:
        spec.targets = parse_targets(target)
    if package_mobile:
        spec.package.ort_format = True
    if fixed_shape is not None:
        batch, sequence = parse_fixed_shape(fixed_shape)
        spec.package.fixed_shape = FixedShapeSpec(batch=batch, sequence=sequence)
    spec.check()


@app.command()
def prune(
    model: str = typer.Argument(..., help="Fine-tuned classifier checkpoint folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the pruned checkpoint (loadable by `compress run`)."),
    calib_data: str = typer.Option(..., "--calib-data", help="Texts (labels used when present) scoring head/neuron importance and, with --distill-epochs, training the pruned model."),
    heads: Optional[float] = typer.Option(None, help="Fraction of all attention heads to remove, e.g. 0.5."),
    ffn: Optional[float] = typer.Option(None, help="Fraction of all FFN neurons to remove, e.g. 0.5."),
    flops_budget: Optional[float] = typer.Option(None, help="Fraction of FLOPs to keep, e.g. 0.6 (the search decides per layer)."),
    params_budget: Optional[float] = typer.Option(None, help="Fraction of parameters to keep."),
    prune_layers: bool = typer.Option(False, "--prune-layers", help="Allow dropping whole layers."),
    no_mask_tuning: bool = typer.Option(False, "--no-mask-tuning", help="Skip least-squares mask tuning (faster, less accurate)."),
    calib_batches: int = typer.Option(16, help="Calibration batches of 16 texts for importance scores."),
    distill_epochs: Optional[float] = typer.Option(None, help="Recover accuracy by distilling the float model for this many epochs."),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text."),
    label_column: Optional[str] = typer.Option(None, help="Column holding the label."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Remove attention heads, FFN neurons (and layers) physically, scored on --calib-data; optionally distill."""
    from compress.run.prune_stage import prune_checkpoint
    from compress.recipe import DistillSpec, PruneSpec, Recipe

    try:
        spec = PruneSpec(head_fraction=heads, ffn_fraction=ffn, flops_budget=flops_budget, params_budget=params_budget,
                         prune_layers=prune_layers, mask_tuning=not no_mask_tuning, num_calib_batches=calib_batches)
        recipe = Recipe(prune=spec, distill=DistillSpec(epochs=distill_epochs) if distill_epochs else None)
        recipe.check()
        prune_checkpoint(model, out, calib_data, recipe, force, text_column, label_column)
    except CompressError as err:
        _fail(err)


@app.command()
def qat(
    model: str = typer.Argument(..., help="Fine-tuned classifier checkpoint folder (a pruned one from `compress prune` too)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the int8 ONNX model (loadable by ORTModelForSequenceClassification)."),
    data: str = typer.Option(..., "--data", help="Training texts (.csv/.tsv/.jsonl); labels are used when --label-weight > 0 and present."),
    epochs: float = typer.Option(2.0, help="Training epochs (distillation from the float model)."),
    max_steps: int = typer.Option(-1, help="Stop after this many steps (overrides --epochs)."),
    learning_rate: float = typer.Option(2e-5, help="Learning rate for weights and quantization ranges."),
    batch_size: int = typer.Option(16, help="Training batch size."),
    label_weight: float = typer.Option(0.0, help="Weight of the labels' cross-entropy beside the distillation loss."),
    recipe: Optional[Path] = typer.Option(None, help="Recipe YAML whose qat: section is used (the flags above are then ignored)."),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text."),
    label_column: Optional[str] = typer.Option(None, help="Column holding the label."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Quantization-aware training: int8 fake quantization (ONNX Runtime's exact arithmetic), activation ranges
    calibrated then learned, trained to match the float model; exported as an int8 graph that runs integer kernels."""
    from compress.commands.qat import qat_checkpoint
    from compress.recipe import QATSpec, load_recipe

    try:
        spec = load_recipe(str(recipe) if recipe else None)
        if spec.qat is None:
            spec.qat = QATSpec(epochs=epochs, max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size,
                               label_weight=label_weight)
        spec.check()
        qat_checkpoint(model, out, data, spec, force, text_column, label_column)
    except CompressError as err:
        _fail(err)


@app.command()
def generate(
    path: Path = typer.Argument(..., help="A `compress run --task causal-lm` OUT folder (its selected variant is used) or a variant folder."),
    prompt: str = typer.Argument(..., help="Text to continue."),
    max_new_tokens: int = typer.Option(64, help="Tokens to generate."),
    threads: Optional[int] = typer.Option(None, help="Intra-op threads [default: all cores, at most 4]."),
    sample: bool = typer.Option(False, "--sample", help="Sample instead of greedy decoding."),
    temperature: float = typer.Option(0.8, help="Sampling temperature (with --sample)."),
) -> None:
    """Run a compressed causal LM on PROMPT, streaming tokens as they are generated."""
    from compress.commands.generate import generate as generate_text

    try:
        generate_text(path, prompt, max_new_tokens, threads, greedy=not sample, temperature=temperature)
    except CompressError as err:
        _fail(err)


@app.command()
def answer(
    path: Path = typer.Argument(..., help="A `compress run --task question-answering` OUT folder (its selected variant is used) or a variant folder."),
    question: str = typer.Option(..., "--question", help="The question."),
    context: str = typer.Option(..., "--context", help="The passage to answer from; one longer than the model's window is read in overlapping windows (qa.doc_stride), not truncated."),
    threads: int | None = typer.Option(None, help="Intra-op threads [default: all cores, at most 4]."),
) -> None:
    """Answer --question from --context with a compressed extractive-QA model: prints the span, then where it is."""
    from compress.commands.answer import answer as answer_question

    try:
        prediction, windows = answer_question(path, question, context, threads)
    except CompressError as err:
        _fail(err)
    typer.echo(prediction.text)
    where = f"characters {prediction.start}-{prediction.end}" if prediction.start >= 0 else "no answer in the context"
    console.print(f"[dim]{where}, score {prediction.score:.2f}, {windows} window{'s' if windows > 1 else ''}[/]")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Output folder for the report."),
    cache: Path = typer.Option(Path(os.environ.get("EDGE_COMPRESS_CACHE", Path.home() / ".cache" / "edge-compress")),
                               help="Where the fine-tuned demo model is cached between runs."),
    threads: Optional[int] = typer.Option(None, help="Intra-op threads for latency [default: all cores, at most 4]."),
) -> None:
    """Fine-tune the bundled all-MiniLM-L6-v2 on the project's intent set (cached), then run `compress run` on it."""
    from compress.commands.demo import run_demo

    try:
        run_demo(out, cache, threads)
    except CompressError as err:
        _fail(err)


def main() -> None:  # pragma: no cover - `python -m compress`
    app(prog_name="compress")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
