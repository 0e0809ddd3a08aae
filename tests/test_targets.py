"""Deployment targets: parsing and availability, device artefacts (ORT format, fixed shapes, fp16, TensorRT QDQ),
the latency gate, and a run that measures a second target and packages the selected variant."""
import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from edge_compress.compress.cli import app
from edge_compress.compress.errors import CompressError
from edge_compress.compress.report.schema import Entry, TargetResult
from edge_compress.compress.report.select import latency_gate, select
from edge_compress.compress.run.targets import TargetRun, parse_fixed_shape, parse_targets, preset_for_targets
from edge_compress.compress.run.variants import catalogue
from edge_compress.export.hardware import CpuInfo
from edge_compress.export.targets import TARGETS, session_providers, unavailable_reason
from edge_compress.export.timing import RoundLatency
from typer.testing import CliRunner

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers() and unavailable_reason(TARGETS["cuda"]) is None
# A machine with an NVIDIA GPU (or CI that says it has one) must run the GPU tests: there a broken GPU set-up fails
# them instead of skipping them quietly.
GPU_MACHINE = shutil.which("nvidia-smi") is not None or os.environ.get("EDGE_COMPRESS_REQUIRE_GPU") == "1"


def require(target: str) -> None:
    """Skip without a GPU; fail on a GPU machine whose `target` cannot start (the GPU part of a test must run there)."""
    reason = unavailable_reason(TARGETS[target])
    if reason is None:
        return
    if GPU_MACHINE:
        pytest.fail(f"this machine has a GPU but {target} cannot start: {reason}")
    pytest.skip(f"needs a GPU ({target}): {reason}")


@pytest.fixture(scope="module")
def onnx_bert(tiny_bert, tmp_path_factory):
    from edge_compress.compress.tasks.text_classification.task import TextClassification
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("onnx")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    path = TextClassification().export(AutoModelForSequenceClassification.from_pretrained(tiny_bert), tokenizer, folder, None)
    feed = dict(tokenizer(["my order is late", "refund please now"], padding=True, return_tensors="np"))
    return path, feed


def run_cpu(path: Path, feed: dict) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feed.items() if k in names})[0]


# --- targets: parsing, availability, the table -------------------------------------------------------------------

def test_parse_targets_keeps_order_and_drops_repeats():
    assert parse_targets("cuda, CPU,cuda,mobile") == ["cuda", "cpu", "mobile"]
    with pytest.raises(CompressError) as err:
        parse_targets("cpu,npu")
    assert "npu" in err.value.message and "cpu, cuda, tensorrt, mobile" in err.value.hint
    assert parse_fixed_shape("1,128") == (1, 128)
    for bad in ("1", "1,0", "a,b", "1,2,3"):
        with pytest.raises(CompressError):
            parse_fixed_shape(bad)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_unavailable_target_is_reported_with_the_fix_and_cpu_still_runs():
    run = TargetRun(["cuda", "tensorrt", "cpu"])
    assert set(run.unavailable) == {"cuda", "tensorrt"}
    assert "onnxruntime-gpu" in run.unavailable["cuda"]
    assert [t.name for t in run.measured] == ["cpu"] and run.selection_target == "cpu"
    assert run.summary()["unavailable"] == run.unavailable


def test_a_gpu_provider_that_cannot_start_counts_as_unavailable(monkeypatch):
    """onnxruntime-gpu lists CUDA even without a driver: the probe session must be what decides."""
    from edge_compress.export import targets

    monkeypatch.setattr(targets.ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    if HAS_CUDA:
        pytest.skip("this machine can start CUDA")
    reason = unavailable_reason(TARGETS["cuda"])
    assert reason is not None and "CUDAExecutionProvider" in reason


def test_which_variants_each_target_measures_and_builds():
    """The variant records say where each kind is measured; GPU-only kinds are built only for a GPU target."""
    records = {v.name: v for v in catalogue() if "text-classification" in v.tasks}
    assert all("cpu" in v.targets for v in records.values())
    assert {n for n, v in records.items() if "cuda" in v.targets} == {"onnx-fp32", "onnx-fp32-optimized", "onnx-fp16"}
    assert "cuda" not in records["onnx-int8-dynamic"].targets  # its int8 kernels are CPU-only
    assert {n for n, v in records.items() if "tensorrt" in v.targets} == {"onnx-fp32", "onnx-fp16", "onnx-int8-tensorrt"}
    assert records["onnx-fp16"].built_for == ("cuda", "tensorrt") and records["onnx-int8-tensorrt"].built_for == ("tensorrt",)
    assert not any("mobile" in v.targets for v in catalogue())  # mobile measures the package, after selection


def test_tensorrt_options_cover_every_eval_shape_and_precision(tmp_path):
    providers = session_providers(TARGETS["tensorrt"], "int8", ["input_ids", "attention_mask"], 32, 128, tmp_path)
    assert [p for p, _ in providers] == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    trt = providers[0][1]
    assert trt["trt_profile_min_shapes"] == "input_ids:1x1,attention_mask:1x1"
    assert trt["trt_profile_max_shapes"] == "input_ids:32x128,attention_mask:32x128"
    assert trt["trt_int8_enable"] == "True" and trt["trt_engine_cache_path"] == str(tmp_path)
    assert "trt_int8_enable" not in session_providers(TARGETS["tensorrt"], "fp32", ["input_ids"], 1, 8, tmp_path)[0][1]


def test_mobile_target_picks_the_arm_preset_and_says_why():
    x86 = CpuInfo("x", "x86_64", 2, ("avx2",))
    assert preset_for_targets(x86, "auto", ["cpu"]).name == "avx2"
    arm = preset_for_targets(x86, "auto", ["cpu", "mobile"])
    assert arm.name == "arm64" and not arm.reduce_range and "mobile" in arm.reason
    assert preset_for_targets(x86, "vnni", ["mobile"]).name == "vnni"  # an explicit preset wins


def test_hardware_fingerprint_names_the_int8_and_fp16_features():
    cpu = CpuInfo("Xeon", "x86_64", 8, ("avx2", "avx512f", "avx512_vnni", "amx_int8"), ("avx512_fp16",)).as_dict()
    assert cpu["features"]["vnni"] and cpu["features"]["amx"] and cpu["features"]["fp16"] and not cpu["features"]["arm_dot_product"]
    arm = CpuInfo("Neoverse", "aarch64", 4, ("asimddp", "i8mm")).as_dict()
    assert arm["features"]["arm_dot_product"] and arm["features"]["arm_i8mm"]
    assert cpu["fingerprint"] != arm["fingerprint"] and len(cpu["fingerprint"]) == 12


# --- device artefacts --------------------------------------------------------------------------------------------

def test_ort_format_conversion_loads_on_cpu_with_a_reduced_build_config(onnx_bert, tmp_path):
    from edge_compress.export.mobile import convert_to_ort

    path, feed = onnx_bert
    (ort_model,), config = convert_to_ort([path], tmp_path)
    assert ort_model.suffix == ".ort" and ort_model.exists()
    np.testing.assert_allclose(run_cpu(ort_model, feed), run_cpu(path, feed), atol=1e-5)
    text = config.read_text()
    assert "ai.onnx;" in text and "MatMul" in text and str(tmp_path) not in text


def test_fixed_shape_export_runs_at_its_shape(onnx_bert, tmp_path):
    from edge_compress.export.mobile import fix_shapes

    path, _ = onnx_bert
    fixed = fix_shapes(path, tmp_path / "fixed.onnx", 2, 16)
    session = ort.InferenceSession(str(fixed), providers=["CPUExecutionProvider"])
    assert all(i.shape == [2, 16] for i in session.get_inputs())
    assert session.get_outputs()[0].shape == [2, 3]
    logits = session.run(None, {i.name: np.ones((2, 16), np.int64) for i in session.get_inputs()})[0]
    assert logits.shape == (2, 3) and np.isfinite(logits).all()


def test_fp16_with_fp32_io_runs_on_the_cpu_provider(onnx_bert, tmp_path):
    from edge_compress.export.fp16 import convert_to_fp16

    path, feed = onnx_bert
    half = convert_to_fp16(path, tmp_path / "fp16.onnx")
    model = onnx.load(str(half))
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # keep_io_types
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    logits = run_cpu(half, feed)  # any error fails: this onnxruntime's CPU provider runs every fp16 op here
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, run_cpu(path, feed), atol=5e-3)


def test_tensorrt_int8_is_symmetric_qdq(onnx_bert, tmp_path):
    from edge_compress.compress.quantize.tensorrt import quantize_int8_tensorrt

    path, feed = onnx_bert
    quantized = quantize_int8_tensorrt(path, tmp_path / "trt.onnx", [feed] * 4, "minmax")
    model = onnx.load(str(quantized))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= 8 and ops.count("QuantizeLinear") == ops.count("DequantizeLinear")
    zero_points = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("zero_point")]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)  # TensorRT: zero point 0
    assert run_cpu(quantized, feed).shape == (2, 3)


# --- latency gate ----------------------------------------------------------------------------------------------------

def lat(p50):
    return RoundLatency(p50, p50, p50, 1, 10.0, 8, (p50, p50, p50))


def entry(name, precision, acc, p50, targets=None, fmt="onnx"):
    return Entry(name, name, fmt, precision, "CPUExecutionProvider", {"accuracy": acc}, latency_ms=lat(p50),
                 latency_ms_batch=lat(p50 * 8), size_bytes=100, targets=targets or {})


def on(acc, p50):
    return TargetResult("CUDAExecutionProvider", {"accuracy": acc}, lat(p50), lat(p50 * 8))


def gated(variants):
    gates = latency_gate(variants)
    return [dataclasses.replace(v, gate=gates.get(v.name, {})) for v in variants]


def test_int8_slower_than_fp32_is_gated_out_and_said_plainly():
    base = entry("pytorch-fp32", "fp32", 90.0, 20.0, fmt="pytorch")
    variants = gated([entry("onnx-fp32", "fp32", 90.0, 5.0), entry("onnx-fp32-optimized", "fp32", 90.0, 4.0),
                      entry("onnx-int8-static", "int8", 90.0, 4.5), entry("onnx-int8-dynamic", "int8", 89.8, 3.0)])
    assert select(base, variants, "accuracy", True, 1.0).name == "onnx-int8-dynamic"
    gate = variants[2].gate["cpu"]
    assert dataclasses.asdict(gate) == {"passed": False, "p50_ms": 4.5, "fp32_variant": "onnx-fp32-optimized", "fp32_p50_ms": 4.0}
    assert variants[3].gate["cpu"].passed and not variants[0].gate
    # With a 0-point budget only the exact variants and the gated-out int8 one qualify: fp32 wins, and the reason says why.
    variants = gated([entry("onnx-fp32", "fp32", 90.0, 5.0), entry("onnx-fp32-optimized", "fp32", 90.0, 3.0),
                      entry("onnx-int8-static", "int8", 90.0, 3.5), entry("onnx-int8-dynamic", "int8", 80.0, 3.0)])
    chosen = select(base, variants, "accuracy", True, 0.0)
    assert chosen.name == "onnx-fp32-optimized" and "latency gate" in chosen.reason
    assert not variants[2].gate["cpu"].passed


def test_gate_and_selection_per_target():
    base = entry("pytorch-fp32", "fp32", 90.0, 20.0, fmt="pytorch")
    variants = gated([entry("onnx-fp32", "fp32", 90.0, 5.0, {"cuda": on(90.0, 1.0)}),
                      entry("onnx-fp16", "fp16", 89.9, 6.0, {"cuda": on(89.9, 0.6)}),
                      entry("onnx-int8-dynamic", "int8", 90.0, 2.0),                       # fastest on CPU, not measured on cuda
                      entry("onnx-int8-tensorrt", "int8", 90.0, 7.0, {"cuda": on(90.0, 1.5)})])
    assert select(base, variants, "accuracy", True, 1.0).name == "onnx-int8-dynamic"
    chosen = select(base, variants, "accuracy", True, 1.0, target="cuda")
    assert chosen.name == "onnx-fp16" and "on cuda" in chosen.reason
    assert not variants[3].gate["cuda"].passed and not variants[3].gate["cpu"].passed
    assert variants[2].gate["cpu"].passed and "cuda" not in variants[2].gate


def test_gate_ignores_failed_and_unmeasured_entries():
    variants = [entry("onnx-fp32", "fp32", 90, 5.0), Entry("onnx-int8-static", None, "onnx", "int8", error="boom"),
                entry("onnx-int8-dynamic", "int8", 90, 4.0, {"cuda": TargetResult(error="no kernel")})]
    gates = latency_gate(variants)
    assert "onnx-int8-static" not in gates and set(gates["onnx-int8-dynamic"]) == {"cpu"}


def test_int4_is_gated_like_int8():
    variants = [entry("onnx-fp32", "fp32", 20.0, 5.0), entry("onnx-int4-weight-only", "int4", 20.5, 6.0)]
    assert not latency_gate(variants)["onnx-int4-weight-only"]["cpu"].passed


# --- a run with a second target and a device package --------------------------------------------------------------

@pytest.fixture(scope="module")
def target_run(tiny_bert, data_dir, fast_recipe, tmp_path_factory):
    """`--target cuda,tensorrt,mobile,cpu` with stand-ins (the CUDA and TensorRT rows pointed at the CPU provider): per-target
    measurement, the GPU-only variants and per-target selection on a machine without a GPU."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("cuda", "tensorrt"):  # stand-ins only where the real target cannot run; on a GPU the real ones
            if unavailable_reason(TARGETS[name]) is not None:
                mp.setitem(TARGETS, name, dataclasses.replace(TARGETS[name], providers=("CPUExecutionProvider",), device="cpu"))
        out = tmp_path_factory.mktemp("runs") / "targets"
        result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                          "--recipe", str(fast_recipe), "--threads", "1", "--target", "cuda,tensorrt,mobile,cpu",
                                          "--fixed-shape", "1,32"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text())


def test_each_variant_is_measured_on_each_target_it_means_something_on(target_run):
    _, report = target_run
    assert report["targets"]["requested"] == ["cuda", "tensorrt", "mobile", "cpu"] and report["targets"]["selection"] == "cuda"
    by_name = {v["name"]: v for v in report["variants"]}
    assert {"onnx-fp16", "onnx-int8-tensorrt"} <= by_name.keys()
    assert all(v.get("error") is None for v in report["variants"]), report["variants"]
    assert set(by_name["onnx-int8-dynamic"]["targets"]) == {"cpu"}
    assert set(by_name["onnx-int8-tensorrt"]["targets"]) == {"cpu", "tensorrt"}
    for name, target in (("onnx-fp32", "cuda"), ("onnx-fp32-optimized", "cuda"), ("onnx-fp16", "cuda"), ("onnx-fp32", "tensorrt"),
                         ("onnx-fp16", "tensorrt"), ("onnx-int8-tensorrt", "tensorrt")):
        result = by_name[name]["targets"][target]
        assert {"metrics", "latency_ms", "latency_ms_batch", "peak_memory_mb"} <= result.keys(), result
        assert result["latency_ms"]["batch_size"] == 1 and result["latency_ms_batch"]["batch_size"] == 8
        assert result["latency_ms"]["rounds"] == 3
        assert result["metrics"]["agreement"] >= 90
    assert by_name["onnx-fp16"]["settings"]["keep_io_types"] and by_name["onnx-int8-tensorrt"]["settings"]["tensorrt"]["activation_symmetric"]
    selected = by_name[report["selected"]]
    assert "cuda" in selected["targets"] and "on cuda" in report["selection_reason"]
    assert report["environment"]["int8_preset"]["name"] == "arm64"  # mobile requested
    assert report["environment"]["cpu"]["fingerprint"]


def test_selected_variant_is_packaged_for_the_device(target_run):
    out, report = target_run
    package = report["package"]
    assert package["variant"] == report["selected"]
    ort_model = out / package["ort_model"]
    assert ort_model.exists() and (out / package["ops_config"]).exists() and (out / package["fixed_shape_model"]).exists()
    assert package["sizes"]["model.ort"] == ort_model.stat().st_size and "tokenizer.json" in package["sizes"]
    assert package["checks"]["ort_model"]["metrics"]["agreement"] >= 90
    assert package["checks"]["fixed_shape_model"]["metrics"]["agreement"] >= 90
    session = ort.InferenceSession(str(ort_model), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].name == "logits"
    selected = next(v for v in report["variants"] if v["name"] == report["selected"])
    assert "mobile" in selected["targets"]


def test_package_ships_the_checkpoints_own_tokenizer(target_run, tiny_bert):
    from tokenizers import Tokenizer

    out, _ = target_run
    source, shipped = (Tokenizer.from_file(str(folder / "tokenizer.json")) for folder in (tiny_bert, out / "package"))
    assert shipped.padding == source.padding and shipped.truncation == source.truncation
    texts = ["my order is late", "refund please " * 30]
    assert [e.ids for e in shipped.encode_batch(texts)] == [e.ids for e in source.encode_batch(texts)]


def test_report_md_has_a_column_group_per_target(target_run):
    out, _ = target_run
    md = (out / "report.md").read_text()
    assert "## Targets" in md and "| variant | cpu accuracy | cpu p50 ms" in md and "cuda p50 ms (b=8)" in md
    assert "mobile accuracy" in md and "## Device package" in md and "Hardware fingerprint" in md


def test_bad_target_flags_fail_before_any_work(tiny_bert, data_dir, tmp_path):
    for flags, words in ((["--target", "cpu,npu"], "npu"), (["--fixed-shape", "1x128"], "BATCH,SEQUENCE")):
        result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(tmp_path / "o"), "--eval-data",
                                          str(data_dir / "eval.csv"), *flags])
        assert result.exit_code == 2 and words in result.output
        assert not (tmp_path / "o").exists()


def test_causal_lm_targets_it_cannot_run_on_are_reported_not_refused():
    from edge_compress.compress.tasks.causal_lm.task import CausalLM

    run = TargetRun(["cuda", "mobile", "cpu"], CausalLM.targets, "causal-lm")
    assert "cuda" in run.unavailable and "causal-lm" in run.unavailable["cuda"] and "Fix:" in run.unavailable["cuda"]
    assert [t.name for t in run.available] == ["mobile", "cpu"] and run.selection_target == "cpu"


# --- on a GPU --------------------------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_cuda_runner_times_on_device_buffers(onnx_bert, tmp_path):
    from edge_compress.export.device import TargetRunner
    from edge_compress.export.fp16 import convert_to_fp16

    require("cuda")
    path, feed = onnx_bert
    for model, precision in ((path, "fp32"), (convert_to_fp16(path, tmp_path / "fp16.onnx"), "fp16")):
        runner = TargetRunner(model, TARGETS["cuda"], precision, 1, 2, 16)
        assert runner.session.get_providers()[0] == "CUDAExecutionProvider"
        np.testing.assert_allclose(runner(feed), run_cpu(path, feed), atol=5e-3)
        prepared = runner.prepare(feed)
        runner.timed(prepared)
        assert prepared[0].get_outputs()[0].device_name().lower() == "cuda"


@pytest.mark.gpu
def test_tensorrt_runs_the_qdq_model(onnx_bert, tmp_path):
    from edge_compress.compress.quantize.tensorrt import quantize_int8_tensorrt
    from edge_compress.export.device import TargetRunner

    require("tensorrt")
    path, feed = onnx_bert
    quantized = quantize_int8_tensorrt(path, tmp_path / "trt.onnx", [feed] * 4, "minmax")
    runner = TargetRunner(quantized, TARGETS["tensorrt"], "int8", 1, 2, 16)
    assert runner(feed).shape == (2, 3)


@pytest.mark.gpu
def test_on_a_gpu_the_pytorch_baseline_and_device_memory_are_measured_there(target_run):
    """With a real CUDA target (no stand-in) the baseline is timed on the GPU and device memory is read."""
    require("cuda")
    _, report = target_run
    cuda = report["baseline"]["targets"]["cuda"]
    assert cuda["error"] is None and cuda["provider"] == "torch-cuda" and cuda["peak_memory_mb"] > 0, cuda
    fp32 = next(v for v in report["variants"] if v["name"] == "onnx-fp32")["targets"]["cuda"]
    assert fp32["provider"] == "CUDAExecutionProvider" and fp32["peak_memory_mb"] > 0, fp32
