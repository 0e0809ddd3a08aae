from compress.quantize.presets import preset_for
from compress.report.writer import _pareto, add_deltas, select
from export.hardware import CpuInfo


def entry(name, acc, p50, size=100, error=None):
    e = {"name": name, "metrics": {"accuracy": acc}, "latency_ms": {"p50": p50}, "latency_ms_batch": {"p50": p50 * 8},
         "size_bytes": size, "error": error}
    return e


def test_selects_fastest_within_budget():
    base = entry("pytorch", 90.0, 10.0, 400)
    variants = [entry("a", 89.5, 3.0), entry("b", 88.0, 1.0), entry("c", 90.2, 4.0), entry("d", 0, 0.1, error="boom")]
    name, reason = select(base, variants, "accuracy", True, 1.0)
    assert name == "a" and "within 1 points" in reason
    assert select(base, variants, "accuracy", True, 2.0)[0] == "b"
    assert select(base, variants, "accuracy", True, 0.0)[0] == "c"


def test_nothing_within_budget_is_said_plainly():
    name, reason = select(entry("p", 90, 10), [entry("a", 80, 1)], "accuracy", True, 1.0)
    assert name is None and "no variant" in reason and "kept" in reason


def test_lower_is_better_metric():
    base = entry("p", 20.0, 10)  # e.g. perplexity
    assert select(base, [entry("a", 20.5, 2), entry("b", 25, 1)], "accuracy", False, 1.0)[0] == "a"


def test_deltas():
    base, v = entry("p", 90.0, 10.0, 400), entry("a", 89.0, 2.5, 100)
    add_deltas(base, v, "accuracy")
    assert v["delta"] == {"metric": -1.0, "latency_ratio": 0.25, "speedup": 4.0, "speedup_batch": 4.0,
                          "size_ratio": 0.25, "compression": 4.0}


def test_pareto_front():
    assert _pareto([1, 2, 3, 4], [80, 90, 85, 95], True) == [0, 1, 3]


def test_presets_follow_the_cpu():
    vnni = CpuInfo("x", "x86_64", 2, ("avx2", "avx512_vnni"))
    avx2 = CpuInfo("x", "x86_64", 2, ("avx2",))
    arm = CpuInfo("x", "aarch64", 2, ("asimddp",))
    assert preset_for(vnni).name == "vnni" and not preset_for(vnni).reduce_range
    assert preset_for(avx2).name == "avx2" and preset_for(avx2).reduce_range
    assert preset_for(arm).name == "arm64" and preset_for(arm).weight_symmetric
    assert preset_for(vnni, "avx2").name == "avx2"
