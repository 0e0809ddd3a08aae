"""Int4 sensitivity of a causal LM's units, computed in PyTorch with the exact quantized weights ONNX Runtime runs.

Why not the generic pass (compress.search.sensitivity): for an LM it builds, saves and opens one ONNX candidate per
unit -- 127 candidates of 300 MB for Gemma 3 270M, each with a new ONNX Runtime session -- which on two shared cores
takes hours. Here the float PyTorch model the run already holds is the candidate: every Linear gets the weights the
8-bit copy stores (dequantized by ONNX Runtime itself, so rounding and blocks are exactly MatMulNBits'), one unit at a
time gets its 4-bit weights, and the KL divergence of the output distribution from the float model's is measured on
the calibration texts: the same proxy and the same `only` direction (the score is the step from 8 to 4 bits of that
unit), at the cost of one forward pass per unit -- or, factorized (the default), one per projection type and one
per layer (`torch_sensitivity`). Two things differ from the ONNX candidate, both the same for every
unit: activations are not quantized (MatMulNBits' accuracy_level 4 does so per block) and the tied head stays float.
The proxy still only orders: every search step is measured on the real ONNX candidate.

Units are matched to Linear modules by their weights (nearest float weight of the same shape), not by names, which
differ between exporters; a unit without a one-to-one match is an error, and the caller falls back to the generic pass.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from edge_compress.compress.search.cache import Cache, fingerprint
from edge_compress.compress.search.schemes import PARTS_FALLBACK, PARTS_LOW, Int4WeightOnly, _unit_of
from edge_compress.compress.search.sensitivity import BASE, Sensitivity, UnitScore
from onnx import helper

SAMPLE = 4096  # weight entries compared per pair when matching units to Linear modules
# Positions whose next-token distributions are compared (the last ones of each text: the most context). With a
# 262k vocabulary the head costs more than the body per position, so scoring every position would double the pass.
SCORED_POSITIONS = 32


def dequantized(path: Path) -> dict[str, np.ndarray]:
    """unit -> its weight [K, N] as the MatMulNBits node at `path` computes with it.

    ONNX Runtime dequantizes: each node is run alone, in fp32 compute, on the K x K identity."""
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=True)
    inits = {t.name: t for t in model.graph.initializer}
    weights = {}
    for node in model.graph.node:
        unit = _unit_of(node)
        if unit is None:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name != "accuracy_level"}
        k = attrs["K"]
        single = helper.make_node("MatMulNBits", ["x", *node.input[1:]], ["y"], domain=node.domain, **attrs)
        graph = helper.make_graph([single], "dequantize", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [k, k])],
                                  [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [k, attrs["N"]])],
                                  [inits[name] for name in node.input[1:] if name in inits])
        tiny = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(node.domain, 1)])
        tiny.ir_version = model.ir_version
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(tiny.SerializeToString(), options, providers=["CPUExecutionProvider"])
        weights[unit] = session.run(["y"], {"x": np.eye(k, dtype=np.float32)})[0]
    return weights


def match_linears(model: Any, weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """unit -> the torch Linear whose float weight is nearest to the unit's (quantized) weight, among equal shapes."""
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    rng = np.random.default_rng(0)
    matched: dict[str, Any] = {}
    for shape in {w.shape for w in weights.values()}:
        units = sorted(u for u, w in weights.items() if w.shape == shape)
        pool = [m for m in linears if tuple(m.weight.shape) == (shape[1], shape[0])]
        index = rng.integers(0, shape[0] * shape[1], SAMPLE)
        cand = np.stack([m.weight.detach().T.reshape(-1).numpy()[index] for m in pool]) if pool else np.zeros((0, SAMPLE))
        for unit in units:
            if not pool:
                raise ValueError(f"no Linear of shape {shape[::-1]} for {unit}")
            distance = np.abs(cand - weights[unit].reshape(-1)[index]).mean(axis=1)
            matched[unit] = pool[int(distance.argmin())]
    if len({id(m) for m in matched.values()}) != len(matched):
        raise ValueError("two units matched one Linear: the weights do not identify the modules")
    return matched


def torch_sensitivity(model: Any, scheme: Int4WeightOnly, src: Path, texts_ids: Sequence[np.ndarray],
                      cache: Path | None = None, factorized: bool = True) -> Sensitivity:
    """`only`-direction KL sensitivity of every unit of the prepared `scheme`, measured on `model` (module docstring).

    `factorized` (default): instead of one pass per unit (127 on Gemma 3 270M), one pass per projection type (every
    layer's q_proj at 4 bits, ...) and one per layer (all of layer 3's projections at 4 bits, ...), 7 + 18 passes; a
    unit's score is the rank-1 estimate type x layer / total (what an additive, separable sensitivity would give).
    Units whose names give no layer and type are scored one by one."""
    import torch

    parts = Path(scheme.parts)
    units = scheme.units(onnx.load(str(src), load_external_data=False))
    groups = _factor_groups(units) if factorized else None
    passes = groups or {u: [u] for u in units}
    feeds = [{"input_ids": np.asarray(ids, dtype=np.int64)} for ids in texts_ids]
    proxy = "kl-pytorch-factorized" if groups else "kl-pytorch"
    setting = {**scheme.settings(), "direction": "only", "proxy": proxy, "units": units}
    key = fingerprint(src, feeds, setting)
    store = Cache(cache) if cache is not None else None
    rows = store.rows(key) if store is not None else {}
    if any(name not in rows for name in [BASE, *passes]):
        eight, four = dequantized(parts / PARTS_FALLBACK), dequantized(parts / PARTS_LOW)
        linears = match_linears(model, eight)
        original = {u: m.weight.detach().clone() for u, m in linears.items()}
        inputs = [torch.from_numpy(f["input_ids"]).reshape(1, -1) for f in feeds]

        keep = {"logits_to_keep": SCORED_POSITIONS} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}

        def logprobs() -> list[torch.Tensor]:
            with torch.inference_mode():
                return [torch.log_softmax(model(input_ids=x, attention_mask=torch.ones_like(x), **keep).logits[0, -SCORED_POSITIONS:]
                                          .double(), -1) for x in inputs]

        def set_weights(names: Sequence[str], weights: dict[str, np.ndarray]) -> None:
            with torch.no_grad():
                for unit in names:
                    linears[unit].weight.copy_(torch.from_numpy(np.ascontiguousarray(weights[unit].T)))

        try:
            reference = logprobs()
            set_weights(units, eight)
            for name in [BASE, *passes]:
                if name in rows:
                    continue
                low = passes.get(name, [])
                set_weights(low, four)
                kl = float(np.mean([(ref.exp() * (ref - got)).sum(-1).mean().item() for ref, got in zip(reference, logprobs())]))
                rows[name] = {"kl": max(kl, 0.0), "metric": None}
                if store is not None:
                    store.put(key, name, rows[name])
                set_weights(low, eight)
        finally:  # the run's float model is the baseline of everything after this: its weights go back
            with torch.no_grad():
                for unit, weight in original.items():
                    linears[unit].weight.copy_(weight)
    base = rows[BASE]["kl"]
    if groups:
        step = {name: rows[name]["kl"] - base for name in groups}
        total = max((sum(v for k, v in step.items() if k.startswith("type:")) +
                     sum(v for k, v in step.items() if k.startswith("layer:"))) / 2, 1e-12)
        score = {u: step[f"type:{t}"] * step[f"layer:{layer}"] / total for u, (layer, t) in ((u, _layer_type(u)) for u in units)}
    else:
        score = {u: rows[u]["kl"] - base for u in units}
    scored = sorted((UnitScore(u, base + score[u], score[u]) for u in units), key=lambda r: (-r.score, r.unit))
    return Sensitivity({**scheme.settings(), "proxy": proxy, "passes": {k: rows[k]["kl"] for k in passes}}, "only", base, None,
                       scored)


def _layer_type(unit: str) -> tuple[str, str] | None:
    """('layers.3', 'q_proj') from '/model/layers.3/self_attn/q_proj/MatMul'; None without a numbered layer."""
    parts = [p for p in unit.strip("/").split("/") if p]
    layer = next((p for p in parts if re.fullmatch(r"[A-Za-z_]+\.\d+", p)), None)
    return (layer, parts[-2]) if layer and len(parts) >= 2 and parts[-2] != layer else None


def _factor_groups(units: Sequence[str]) -> dict[str, list[str]] | None:
    """{'type:q_proj': [every layer's q_proj], ..., 'layer:layers.3': [its projections], ...}; None when a unit has no
    layer and type or there are too few of either for the factorization to save passes."""
    keys = {u: _layer_type(u) for u in units}
    if any(k is None for k in keys.values()):
        return None
    groups: dict[str, list[str]] = {}
    for unit, (layer, kind) in keys.items():
        groups.setdefault(f"type:{kind}", []).append(unit)
        groups.setdefault(f"layer:{layer}", []).append(unit)
    return groups if len(groups) < len(units) else None


def tokenized(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
    """Calibration texts as the model reads them (BOS included), cut to `max_length` tokens."""
    return [np.asarray(tokenizer(t, truncation=True, max_length=max_length)["input_ids"], dtype=np.int64) for t in texts]

