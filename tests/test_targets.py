"""Deployment targets: parsing and availability, device artefacts (ORT format, fixed shapes, fp16, TensorRT QDQ),
the latency gate, and a run that measures a second target and packages the selected variant."""
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from compress.cli import app
from compress.errors import CompressError
from compress.report.gate import apply_latency_gate
from compress.report.writer import select
from compress.run.targets import TargetRun, parse_fixed_shape, parse_targets, preset_for_targets
from export.hardware import CpuInfo
from export.targets import TARGETS, Target, measures, session_providers, unavailable_reason

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers() and unavailable_reason(TARGETS["cuda"]) is None


@pytest.fixture(scope="module")
def onnx_bert(tiny_bert, tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from export.onnx_export import export_to_onnx

    folder = tmp_path_factory.mktemp("onnx")
    path = export_to_onnx(AutoModelForSequenceClassification.from_pretrained(tiny_bert), folder, "text-classification")
    feed = dict(AutoTokenizer.from_pretrained(tiny_bert)(["my order is late", "refund please now"], padding=True, return_tensors="np"))
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
    import export.targets as targets

    monkeypatch.setattr(targets.ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    if HAS_CUDA:
        pytest.skip("this machine can start CUDA")
    reason = unavailable_reason(TARGETS["cuda"])
    assert reason is not None and "CUDAExecutionProvider" in reason


def test_which_variants_each_target_measures():
    assert measures(TARGETS["cpu"], "pruned-onnx-int8-static")
    assert measures(TARGETS["cuda"], "onnx-fp16") and measures(TARGETS["cuda"], "pruned-onnx-fp32-optimized")
    assert not measures(TARGETS["cuda"], "onnx-int8-dynamic")  # its int8 kernels are CPU-only
    assert measures(TARGETS["tensorrt"], "onnx-int8-tensorrt") and not measures(TARGETS["tensorrt"], "onnx-fp32-optimized")
    assert not measures(TARGETS["mobile"], "onnx-fp32")  # mobile measures the package, after selection


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
    from export.mobile import convert_to_ort

    path, feed = onnx_bert
    (ort_model,), config = convert_to_ort([path], tmp_path)
    assert ort_model.suffix == ".ort" and ort_model.exists()
    np.testing.assert_allclose(run_cpu(ort_model, feed), run_cpu(path, feed), atol=1e-5)
    text = config.read_text()
    assert "ai.onnx;" in text and "MatMul" in text and str(tmp_path) not in text


def test_fixed_shape_export_runs_at_its_shape(onnx_bert, tmp_path):
    from export.mobile import fix_shapes

    path, _ = onnx_bert
    fixed = fix_shapes(path, tmp_path / "fixed.onnx", 2, 16)
    session = ort.InferenceSession(str(fixed), providers=["CPUExecutionProvider"])
    assert all(i.shape == [2, 16] for i in session.get_inputs())
    assert session.get_outputs()[0].shape == [2, 3]
    logits = session.run(None, {i.name: np.ones((2, 16), np.int64) for i in session.get_inputs()})[0]
    assert logits.shape == (2, 3) and np.isfinite(logits).all()


def test_fp16_with_fp32_io_runs_on_the_cpu_provider(onnx_bert, tmp_path):
    from export.fp16 import convert_to_fp16

    path, feed = onnx_bert
    half = convert_to_fp16(path, tmp_path / "fp16.onnx")
    model = onnx.load(str(half))
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # keep_io_types
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    try:
        logits = run_cpu(half, feed)
    except Exception as err:  # an onnxruntime build whose CPU provider lacks fp16 kernels
        pytest.skip(f"CPU provider cannot run this fp16 model: {err}")
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, run_cpu(path, feed), atol=5e-3)


def test_tensorrt_int8_is_symmetric_qdq(onnx_bert, tmp_path):
    from compress.quantize.tensorrt import quantize_int8_tensorrt

    path, feed = onnx_bert
    quantized = quantize_int8_tensorrt(path, tmp_path / "trt.onnx", [feed] * 4, "minmax")
    model = onnx.load(str(quantized))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= 8 and ops.count("QuantizeLinear") == ops.count("DequantizeLinear")
    zero_points = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("zero_point")]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)  # TensorRT: zero point 0
    assert run_cpu(quantized, feed).shape == (2, 3)


# --- latency gate ----------------------------------------------------------------------------------------------------

def entry(name, precision, acc, p50, targets=None, fmt="onnx"):
    return {"name": name, "format": fmt, "precision": precision, "metrics": {"accuracy": acc}, "latency_ms": {"p50": p50},
            "latency_ms_batch": {"p50": p50 * 8}, "size_bytes": 100, "error": None, "targets": targets or {}}


def on(acc, p50):
    return {"metrics": {"accuracy": acc}, "latency_ms": {"p50": p50}, "latency_ms_batch": {"p50": p50 * 8}, "error": None}


def test_int8_slower_than_fp32_is_gated_out_and_said_plainly():
    base = entry("pytorch-fp32", "fp32", 90.0, 20.0, fmt="pytorch")
    variants = [entry("onnx-fp32", "fp32", 90.0, 5.0), entry("onnx-fp32-optimized", "fp32", 90.0, 4.0),
                entry("onnx-int8-static", "int8", 90.0, 4.5), entry("onnx-int8-dynamic", "int8", 89.8, 3.0)]
    name, _ = select(base, variants, "accuracy", True, 1.0)
    assert name == "onnx-int8-dynamic"
    gate = variants[2]["gate"]["cpu"]
    assert gate == {"passed": False, "p50_ms": 4.5, "fp32_variant": "onnx-fp32-optimized", "fp32_p50_ms": 4.0}
    assert variants[3]["gate"]["cpu"]["passed"] and "gate" not in variants[0]
    # With a 0-point budget only the exact variants and the gated-out int8 one qualify: fp32 wins, and the reason says why.
    variants[3]["metrics"]["accuracy"] = 80.0
    variants[2]["latency_ms"]["p50"] = 3.5
    variants[2]["targets"] = {}
    variants[1]["latency_ms"]["p50"] = 3.0
    name, reason = select(base, variants, "accuracy", True, 0.0)
    assert name == "onnx-fp32-optimized" and "latency gate" in reason
    assert not variants[2]["gate"]["cpu"]["passed"]


def test_gate_and_selection_per_target():
    base = entry("pytorch-fp32", "fp32", 90.0, 20.0, fmt="pytorch")
    variants = [entry("onnx-fp32", "fp32", 90.0, 5.0, {"cuda": on(90.0, 1.0)}),
                entry("onnx-fp16", "fp16", 89.9, 6.0, {"cuda": on(89.9, 0.6)}),
                entry("onnx-int8-dynamic", "int8", 90.0, 2.0),                       # fastest on CPU, not measured on cuda
                entry("onnx-int8-tensorrt", "int8", 90.0, 7.0, {"cuda": on(90.0, 1.5)})]
    assert select(base, variants, "accuracy", True, 1.0)[0] == "onnx-int8-dynamic"
    name, reason = select(base, variants, "accuracy", True, 1.0, target="cuda")
    assert name == "onnx-fp16" and "on cuda" in reason
    assert not variants[3]["gate"]["cuda"]["passed"] and not variants[3]["gate"]["cpu"]["passed"]
    assert variants[2]["gate"]["cpu"]["passed"] and "cuda" not in variants[2]["gate"]


def test_gate_ignores_failed_and_unmeasured_entries():
    variants = [entry("onnx-fp32", "fp32", 90, 5.0), {"name": "onnx-int8-static", "precision": "int8", "error": "boom"},
                entry("onnx-int8-dynamic", "int8", 90, 4.0, {"cuda": {"error": "no kernel"}})]
    apply_latency_gate(variants)
    assert "gate" not in variants[1] and set(variants[2]["gate"]) == {"cpu"}


# --- a run with a second target and a device package --------------------------------------------------------------

@pytest.fixture(scope="module")
def target_run(tiny_bert, data_dir, fast_recipe, tmp_path_factory):
    """`--target gpu-like,mobile,cpu`: a stand-in second target (the CUDA row, pointed at the CPU provider) exercises
    per-target measurement, the GPU-only variants and per-target selection on a machine without a GPU."""
    stand_in = Target("cuda", ("CPUExecutionProvider",), "cpu", TARGETS["cuda"].variants + ("onnx-int8-tensorrt",),
                      builds=("onnx-fp16", "onnx-int8-tensorrt"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(TARGETS, "cuda", stand_in)
        out = tmp_path_factory.mktemp("runs") / "targets"
        result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                          "--recipe", str(fast_recipe), "--threads", "1", "--target", "cuda,mobile,cpu",
                                          "--fixed-shape", "1,32"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text())


def test_each_variant_is_measured_on_each_target_it_means_something_on(target_run):
    _, report = target_run
    assert report["targets"]["requested"] == ["cuda", "mobile", "cpu"] and report["targets"]["selection"] == "cuda"
    by_name = {v["name"]: v for v in report["variants"]}
    assert {"onnx-fp16", "onnx-int8-tensorrt"} <= by_name.keys()
    assert all(v.get("error") is None for v in report["variants"]), report["variants"]
    assert set(by_name["onnx-int8-dynamic"]["targets"]) == {"cpu"}
    for name in ("onnx-fp32", "onnx-fp32-optimized", "onnx-fp16", "onnx-int8-tensorrt"):
        cuda = by_name[name]["targets"]["cuda"]
        assert {"metrics", "latency_ms", "latency_ms_batch", "peak_memory_mb"} <= cuda.keys(), cuda
        assert cuda["latency_ms"]["batch_size"] == 1 and cuda["latency_ms_batch"]["batch_size"] == 8
        assert cuda["metrics"]["agreement"] >= 90
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


def test_causal_lm_refuses_targets():
    from compress.recipe import Recipe

    with pytest.raises(CompressError, match="text classifiers only"):
        Recipe(task="causal-lm", targets=["cuda"]).check()


# --- on a GPU --------------------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a CUDA GPU")
def test_cuda_runner_times_on_device_buffers(onnx_bert, tmp_path):
    from export.device import TargetRunner
    from export.fp16 import convert_to_fp16

    path, feed = onnx_bert
    for model, precision in ((path, "fp32"), (convert_to_fp16(path, tmp_path / "fp16.onnx"), "fp16")):
        runner = TargetRunner(model, TARGETS["cuda"], precision, 1, 2, 16)
        assert runner.session.get_providers()[0] == "CUDAExecutionProvider"
        np.testing.assert_allclose(runner(feed), run_cpu(path, feed), atol=5e-3)
        prepared = runner.prepare(feed)
        runner.timed(prepared)
        assert prepared[0].get_outputs()[0].device_name().lower() == "cuda"


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA or unavailable_reason(TARGETS["tensorrt"]) is not None, reason="needs TensorRT")
def test_tensorrt_runs_the_qdq_model(onnx_bert, tmp_path):
    from compress.quantize.tensorrt import quantize_int8_tensorrt
    from export.device import TargetRunner

    path, feed = onnx_bert
    quantized = quantize_int8_tensorrt(path, tmp_path / "trt.onnx", [feed] * 4, "minmax")
    runner = TargetRunner(quantized, TARGETS["tensorrt"], "int8", 1, 2, 16)
    assert runner(feed).shape == (2, 3)
