"""Per-model mixed precision: measure each unit's sensitivity, then search the cut within the accuracy budget.

One job per module:
- `schemes`: what a unit is and how a candidate with some units at the low precision is built
  (int8 dynamic vs float for classifiers; int4 vs 8-bit weight-only MatMulNBits for causal LMs);
- `proxy`: the cheap measure (KL divergence of output logits against the float graph on calibration feeds);
- `cache`: sensitivity results keyed by a hash of graph + feeds + setting, so a rerun does not recompute;
- `sensitivity`: one score per unit, computed in parallel;
- `executors`: where independent candidates run (local process pool by default, inline, Ray if installed);
- `search`: greedy by sensitivity, each step measured for real, bisection refine; best-so-far always on disk;
- `measures`: the real measurements (accuracy, perplexity, latency) as picklable callables;
- `pareto`: the non-dominated trials; `report`: the table, chart and front data the report writer calls;
- `config`: the recipe's `search:` section; `variants`: the onnx-int8-searched / onnx-int4-searched records;
- `files`: atomic JSON, a graph's files, a private view of a source graph.

Use (what compress/search/variants.py does inside a run):

    scheme = Int8Dynamic(preset)                                   # or Int4WeightOnly(block_size=32, ...)
    sens = sensitivity(fp32, scheme, calib_feeds, cache=Path("sensitivity.json"))
    result = search(fp32, scheme, sens.tolerant_first(), measure, Budget(baseline, 1.0), out,
                    objective="size", max_trials=16, seeds=[hand_tuned_low_set])
    # out/best.onnx (record inside: read_best(out)), out/search.json; report.sensitivity_table(sens.as_dict()), ...
"""
