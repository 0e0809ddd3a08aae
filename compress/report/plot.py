"""The report's figures (matplotlib, Agg): accuracy against size and latency, and where the bytes sit.

Pareto panels: every model is a numbered marker (the number is its row in the report's
table), so labels never overlap; markers closer than a few pixels share one label
("2,3").  The baseline is a star drawn last, on top of every point; the selected
variant has its own legend entry; the legend and the number key sit outside the axes.
"""
from __future__ import annotations

import io
from typing import Any

PART_COLORS = {"embeddings": "#e8a33d", "head": "#7a5195", "other": "#bbbbbb"}
BLOCK_COLOR = "#3d7ae8"
_NEAR_PX = 14


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def numbered(report: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(marker number, entry) for every model that measured, baseline first: the numbering the table uses too."""
    rows = [report["baseline"], *report["variants"]]
    return [(i + 1, e) for i, e in enumerate(rows) if e.get("error") is None]


def pareto(xs: list[float], ys: list[float], higher_is_better: bool) -> list[int]:
    """Indices of points no other point beats on both cost (x, lower is better) and metric, sorted by x."""
    sign = 1 if higher_is_better else -1
    order = sorted(range(len(xs)), key=lambda i: (xs[i], -sign * ys[i]))
    front, best = [], float("-inf")
    for i in order:
        if sign * ys[i] > best:
            front.append(i)
            best = sign * ys[i]
    return front


def _clusters(ax, xs: list[float], ys: list[float]) -> list[list[int]]:
    """Groups of point indices that sit within a few pixels of each other once drawn."""
    points = ax.transData.transform(list(zip(xs, ys)))
    groups: list[list[int]] = []
    for i, (px, py) in enumerate(points):
        for group in groups:
            gx, gy = points[group[0]]
            if abs(px - gx) < _NEAR_PX and abs(py - gy) < _NEAR_PX:
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def pareto_figure(report: dict[str, Any]):
    """Two panels (metric vs size, metric vs batch-1 latency) with the budget line and a numbered key."""
    plt = _plt()
    from matplotlib.lines import Line2D

    metric, selected, base_name = report["metric"], report["selected"], report["baseline"]["name"]
    rows = numbered(report)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, (key, label) in zip(axes, [("size", "size on disk (MB)"), ("latency", "p50 latency, batch 1 (ms)")]):
        xs = [e["size_bytes"] / 1e6 if key == "size" else e["latency_ms"]["p50"] for _, e in rows]
        ys = [e["metrics"][metric] for _, e in rows]
        front = pareto(xs, ys, report["higher_is_better"])
        ax.plot([xs[i] for i in front], [ys[i] for i in front], color="tab:gray", lw=1, alpha=0.6, zorder=1)
        for i, (_, e) in enumerate(rows):
            if e["name"] == base_name:
                continue
            is_sel = e["name"] == selected
            ax.scatter(xs[i], ys[i], s=110 if is_sel else 50, marker="o", zorder=3,
                       color="tab:green" if is_sel else "tab:blue", edgecolor="black" if is_sel else "none")
        if xs and max(xs) > 10 * min(xs):
            from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        floor = report["baseline"]["metrics"][metric] - report["max_accuracy_drop"] * (1 if report["higher_is_better"] else -1)
        ax.axhline(floor, ls="--", color="tab:red", lw=1, zorder=2)
        b = next(i for i, (_, e) in enumerate(rows) if e["name"] == base_name)
        # The baseline last and highest: fp32 ONNX points share its size and would hide it otherwise.
        ax.scatter(xs[b], ys[b], s=240, marker="*", color="gold", edgecolor="black", linewidth=1, zorder=6)
        ax.margins(x=0.12, y=0.18)
        fig.canvas.draw()
        for group in _clusters(ax, xs, ys):
            text = ",".join(str(rows[i][0]) for i in group)
            ax.annotate(text, (xs[group[0]], ys[group[0]]), textcoords="offset points", xytext=(7, 6), fontsize=9,
                        fontweight="bold", zorder=7,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], marker="*", color="gold", markeredgecolor="black", markersize=14, ls="none",
                      label=f"1 = {base_name} (baseline)"),
               Line2D([], [], marker="o", color="tab:blue", ls="none", markersize=7, label="variant"),
               Line2D([], [], color="tab:gray", lw=1, label="Pareto front"),
               Line2D([], [], color="tab:red", ls="--", lw=1, label=f"budget ({report['max_accuracy_drop']:g} {metric} allowed)")]
    if selected:
        number = next(n for n, e in rows if e["name"] == selected)
        handles.insert(1, Line2D([], [], marker="o", color="tab:green", markeredgecolor="black", ls="none", markersize=10,
                                 label=f"{number} = {selected} (selected)"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8.5,
               frameon=False)
    key = "   ".join(f"{n} {e['name']}" for n, e in rows)
    fig.text(0.5, 0.965, key, ha="center", va="top", fontsize=8, wrap=True)
    fig.suptitle(f"{report['task']}: {metric} vs size and latency", y=0.995, fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.92))
    return fig


def size_figure(report: dict[str, Any]):
    """Stacked horizontal bars: each model's bytes per part (from its initializers / parameters)."""
    plt = _plt()

    rows = [(n, e) for n, e in numbered(report) if e.get("size_breakdown")]
    if not rows:
        return None
    parts: list[str] = []
    for _, e in rows:
        parts += [p for p in e["size_breakdown"]["parts"] if p not in parts]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.4))
    labels = [f"{n} {e['name']}" for n, e in rows]
    left = [0.0] * len(rows)
    for part in parts:
        widths = [e["size_breakdown"]["parts"].get(part, {}).get("bytes", 0) / 1e6 for _, e in rows]
        ax.barh(labels, widths, left=left, color=PART_COLORS.get(part, BLOCK_COLOR), label=part, edgecolor="white")
        left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("MB of weights (initializers)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _plt().close(fig)
    return buffer.getvalue()
