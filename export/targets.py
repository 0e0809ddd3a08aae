"""Deployment targets as data: providers, options, availability, and which variants are worth measuring there.

One table, so adding a target is adding a row.  `onnxruntime-gpu` lists CUDA and
TensorRT among its available providers even on a machine with no GPU or no
TensorRT libraries, so availability is probed with a one-node session and
checked against the providers that session actually got.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import onnxruntime as ort

# onnxruntime-gpu's newest PyPI release (there is no 1.32.0 GPU wheel); it installs the same `onnxruntime` package.
ORT_GPU_PIN = "onnxruntime-gpu==1.31.1"
GPU_INSTALL = f"pip uninstall -y onnxruntime onnxruntime-gpu && pip install {ORT_GPU_PIN} (see README, Deployment targets)"


@dataclass(frozen=True)
class Target:
    name: str
    providers: tuple[str, ...]          # priority order; the last one runs the nodes the first cannot
    device: str                         # where I/O binding keeps inputs and outputs: "cpu" or "cuda"
    variants: tuple[str, ...]           # variant kinds measured here ("*" = every variant)
    builds: tuple[str, ...] = ()        # variant kinds built only when this target is available
    precision_options: dict[str, dict[str, str]] = field(default_factory=dict)  # first provider's options per precision
    install: str = ""                   # how to get the provider when it is missing
    packaged: bool = False              # measured as the packaged artefact after selection (mobile), not per variant


TARGETS: dict[str, Target] = {
    "cpu": Target("cpu", ("CPUExecutionProvider",), "cpu", ("*",)),
    "cuda": Target("cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"), "cuda",
                   # int8 kernels (QAttention, DynamicQuantizeMatMul, QDQ MatMul) run on the CPU under the CUDA EP: not a GPU result
                   ("onnx-fp32", "onnx-fp32-optimized", "onnx-fp16"), builds=("onnx-fp16",), install=GPU_INSTALL),
    "tensorrt": Target("tensorrt", ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"), "cuda",
                       # TensorRT reads the unfused graph (ORT's contrib-op fusions are CUDA-only) and QDQ with zero points of 0
                       ("onnx-fp32", "onnx-fp16", "onnx-int8-tensorrt"), builds=("onnx-fp16", "onnx-int8-tensorrt"),
                       precision_options={"fp16": {"trt_fp16_enable": "True"},
                                          "int8": {"trt_int8_enable": "True", "trt_fp16_enable": "True"}},
                       install=GPU_INSTALL + ", plus TensorRT 10 libraries on LD_LIBRARY_PATH (pip install tensorrt-cu12)"),
    # The ORT-format package for a minimal ONNX Runtime build on an ARM device, checked on this host's CPU after selection.
    "mobile": Target("mobile", ("CPUExecutionProvider",), "cpu", (), packaged=True),
}


def unavailable_reason(target: Target) -> str | None:
    """None when this machine can run `target`, else why not."""
    first = target.providers[0]
    if first != "CPUExecutionProvider" and _both_wheels():
        return "both onnxruntime and onnxruntime-gpu are installed; they write the same files, so which one runs is undefined"
    if first not in ort.get_available_providers():
        return f"{first} is not in this onnxruntime build ({ort.__version__}, providers {ort.get_available_providers()})"
    if first == "CPUExecutionProvider":
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ORT warns before falling back; the fallback is checked below
            session = ort.InferenceSession(_probe_model(), providers=list(target.providers))
    except Exception as err:  # noqa: BLE001 -- a provider that fails to initialise raises or falls back, depending on the build
        return f"{first} failed to start: {err}"
    if session.get_providers()[0] != first:
        return f"{first} is installed but could not start (no GPU, driver or libraries); the session fell back to {session.get_providers()}"
    return None


def _both_wheels() -> bool:
    try:
        return bool(version("onnxruntime") and version("onnxruntime-gpu"))
    except PackageNotFoundError:
        return False


def _probe_model() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "probe", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def measures(target: Target, variant: str) -> bool:
    """Whether `variant` (its kind: the name without a line prefix such as `pruned-`) is worth measuring on `target`."""
    return "*" in target.variants or any(variant == kind or variant.endswith("-" + kind) for kind in target.variants)


def session_providers(target: Target, precision: str, inputs: list[str], max_batch: int, max_seq: int,
                      cache_dir: Path) -> list[tuple[str, dict[str, str]]]:
    """Providers with their options for one session.

    TensorRT builds one engine per shape profile: without a profile covering every eval shape it would rebuild an
    engine whenever the batch or sequence length changes (minutes each), so the profile spans 1x1 .. batch x seq.
    """
    listed: list[tuple[str, dict[str, str]]] = []
    for provider in target.providers:
        options: dict[str, str] = {}
        if provider == "TensorrtExecutionProvider":
            shape = lambda b, s: ",".join(f"{name}:{b}x{s}" for name in inputs)
            options = {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache_dir),
                       "trt_profile_min_shapes": shape(1, 1), "trt_profile_opt_shapes": shape(max_batch, max_seq),
                       "trt_profile_max_shapes": shape(max_batch, max_seq), **target.precision_options.get(precision, {})}
        elif provider == "CUDAExecutionProvider":
            # Grow the arena only by what is asked for, so the memory held after the runs is close to the peak needed.
            options = {"device_id": "0", "arena_extend_strategy": "kSameAsRequested"}
        listed.append((provider, options))
    return listed
