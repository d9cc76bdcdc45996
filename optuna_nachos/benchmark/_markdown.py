"""The Markdown page of a suite's results, written from its result record only."""

from __future__ import annotations

from typing import Any


def _number(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else format(value * scale, fmt)


def _mean_sd(mean: float | None, sd: float | None, fmt: str, scale: float) -> str:
    if mean is None:
        return "none admissible"
    if not sd:
        return _number(mean, fmt, scale)
    return f"{_number(mean, fmt, scale)} ± {_number(sd, fmt, scale)}"


def _reference_macs(summary: dict[str, Any]) -> str:
    """Test MACs in the reference's convention; records older than the column hold none."""
    key = "test_avg_macs_reference_convention"
    if f"{key}_mean" not in summary:
        return "-"
    return _mean_sd(summary[f"{key}_mean"], summary.get(f"{key}_sd"), ".3f", 1e-6)


def _headline(record: dict[str, Any]) -> list[str]:
    suite = record["suite"]
    reference = suite.get("reference") or {}
    ref_rows = reference.get("rows", {})
    ref_name = reference.get("dataset", "reference")
    lines = [
        f"| variant | how it was run | test accuracy % | test average MACs (M), ours "
        f"| test average MACs (M), reference convention | admissible runs "
        f"| hypervolume (validation) | trained / trials "
        f"| {ref_name}: accuracy % / MACs (M), reference convention | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for experiment in record["experiments"]:
        summary = experiment["summary"]
        if not summary["runs"]:
            continue
        ref = ref_rows.get(experiment["reference"]) if experiment["reference"] else None
        ref_text = f"{ref[0]:.2f} / {ref[1]:.2f}" if ref else "-"
        hv = summary["hypervolume_mean"]
        # Records written before the validation protocol hold test figures as "accuracy".
        test = "test_accuracy_mean" in summary
        acc_key = "test_accuracy" if test else "accuracy"
        macs_key = "test_avg_macs" if test else "avg_macs"
        lines.append(
            "| {label} | {kind} | {acc} | {macs} | {ref_macs} | {adm}/{runs} | {hv} "
            "| {trained} / {trials} | {ref} | {note} |".format(
                label=experiment["label"],
                kind=experiment["kind"].replace("_", "-"),
                acc=_mean_sd(summary[f"{acc_key}_mean"], summary[f"{acc_key}_sd"], ".2f", 100),
                macs=_mean_sd(summary[f"{macs_key}_mean"], summary[f"{macs_key}_sd"], ".3f", 1e-6),
                ref_macs=_reference_macs(summary),
                adm=summary["admissible_runs"],
                runs=summary["runs"],
                hv=_number(hv, ".4f"),
                trained=summary["trained"],
                trials=summary["trials"],
                ref=ref_text,
                note=experiment["note"] or "",
            )
        )
    return lines


def _per_run(record: dict[str, Any]) -> list[str]:
    lines = [
        "| variant | seed | best admissible (chosen on validation): trial, val accuracy %, "
        "test accuracy %, test avg MACs (M) | architecture "
        "| exits | exit ratios | admissible / trained | hypervolume |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for experiment in record["experiments"]:
        for run in experiment["runs"]:
            best = run["best"]
            if best is None:
                cells = "none trained | - | - | -"
            else:
                mark = "" if best["admissible"] else " (not admissible)"
                ratios = ", ".join(f"{r:.2f}" for r in best["exit_ratios"] or [])
                test_acc = best.get("test_accuracy")
                val_text = f"{100 * best['accuracy']:.2f}" if test_acc is not None else "n/a"
                acc = best["accuracy"] if test_acc is None else test_acc
                macs = best.get("test_avg_macs") or best["avg_macs"]
                cells = (
                    f"#{best['trial']}, {val_text}, {100 * acc:.2f}, "
                    f"{macs / 1e6:.3f}{mark} | `{best['architecture']}` "
                    f"| {best['exit_stages']} | {ratios}"
                )
            lines.append(
                f"| {experiment['label']} | {run['seed']} | {cells} "
                f"| {run['admissible']} / {run['trained']} | {run['hypervolume']:.4f} |"
            )
    return lines


def _interval(cell: dict[str, Any] | None) -> str:
    """``mean [low, high] (n=N)`` of a hypervolume across seeds; ``-`` when no run got there."""
    if cell is None:
        return "-"
    return f"{cell['mean']:.4f} [{cell['low']:.4f}, {cell['high']:.4f}] (n={cell['n']})"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _hypervolume_at(record: dict[str, Any]) -> list[str]:
    """Mean hypervolume after each checkpoint with its confidence interval, per experiment
    with at least one run that got that far; nothing for records older than the figures."""
    statistics = record.get("statistics") or {}
    checkpoints = [str(k) for k in statistics.get("checkpoints", [])]
    rows = [
        e
        for e in record["experiments"]
        if any((e["summary"].get("hypervolume_at") or {}).get(k) for k in checkpoints)
    ]
    if not rows:
        return []
    level = f"{100 * statistics['confidence']:g}%"
    lines = [
        f"Hypervolume of the admissible front after the first k completed trials: mean over "
        f"seeds [{level} t confidence interval] (n = seeds that got that far; one seed gives "
        "no interval, only its value).",
        "",
        "| variant | " + " | ".join(f"k = {k}" for k in checkpoints) + " |",
        "|---|" + "---|" * len(checkpoints),
    ]
    for experiment in rows:
        cells = experiment["summary"]["hypervolume_at"]
        lines.append(
            f"| {experiment['label']} | "
            + " | ".join(_interval(cells.get(k)) for k in checkpoints)
            + " |"
        )
    return ["", *lines]


def _comparisons(record: dict[str, Any]) -> list[str]:
    """The paired comparisons with the suite's baseline, one row per experiment and
    checkpoint; nothing without a baseline."""
    statistics = record.get("statistics") or {}
    rows = statistics.get("comparisons") or []
    if not rows:
        return []
    names = {e["name"]: e["label"] for e in record["experiments"]}
    baseline = names.get(statistics["baseline"], statistics["baseline"])
    level = f"{100 * statistics['confidence']:g}%"
    lines = [
        f"Paired by seed: {baseline} minus each variant, hypervolume after the first k "
        f"completed trials (positive: {baseline} is better). Two-sided p-values of the paired "
        "t-test and the Wilcoxon signed-rank test; '-' where a test is undefined (one seed, or "
        "differences that are all equal or all zero). With fewer than 6 seeds the Wilcoxon "
        "p-value cannot fall below 0.05.",
        "",
        f"| variant | k | mean difference [{level} CI] | t-test p | Wilcoxon p | n |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['checkpoint']} | {row['mean_difference']:+.4f} "
            f"[{row['low']:+.4f}, {row['high']:+.4f}] | {_p(row['t_test_p'])} "
            f"| {_p(row['wilcoxon_p'])} | {row['n']} |"
        )
    return ["", *lines]


def _across_seeds(record: dict[str, Any]) -> list[str]:
    """The section of the hypervolume statistics across seeds, when the record has any."""
    body = _hypervolume_at(record) + _comparisons(record)
    return ["## Hypervolume across seeds", *body, ""] if body else []


def _efficiency(record: dict[str, Any]) -> list[str]:
    efficiency = record["efficiency"]
    lines = [
        f"- Plugin overhead per trained trial (time outside training and calibration): median "
        f"{_number(efficiency['overhead_median'], '.2%')}, worst run median "
        f"{_number(efficiency['overhead_max'], '.2%')}.",
        f"- Training throughput (images per second over all epochs of a candidate, median): "
        f"{_number(efficiency['train_images_per_second_median'], ',.0f')}.",
    ]
    network = efficiency.get("network")
    if network:
        lines.append(
            f"- Early-exit inference of {network['experiment']} seed {network['seed']} trial "
            f"#{network['trial']} (`{network['architecture']}`, exits {network['exit_stages']}):"
        )
        lines += [
            "",
            "| device | batch | full network ms / image | early exit ms / image | speed-up "
            "| MAC ratio (full / average) |",
            "|---|---|---|---|---|---|",
        ]
        for row in efficiency["inference"]:
            lines.append(
                f"| {row['device']} | {row['batch_size']} | {row['full_ms_per_image']:.3f} "
                f"| {row['early_exit_ms_per_image']:.3f} | {row['speedup']:.2f}x "
                f"| {row['mac_ratio']:.2f}x |"
            )
    return lines


def _environment(record: dict[str, Any]) -> list[str]:
    env = record["environment"]
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    git = env.get("git") or {}
    commit = git.get("commit") or "unknown"
    dirty = " (with uncommitted changes)" if git.get("dirty") else ""
    parts = record.get("parts") or {}
    wall = ", ".join(
        f"{name} {entry['seconds'] / 60:.1f} min in {entry['runs']} call(s)"
        f"{'' if entry.get('complete') else ' (incomplete)'}"
        for name, entry in parts.items()
    )
    return [
        f"- Machine: {env['cpu']} ({env['cpu_count']} CPUs), torch threads "
        f"{record['suite']['threads']}, device {env['device']}"
        + (f", GPU {env['gpu']}" if env.get("gpu") else "")
        + ".",
        f"- Software: Python {env['python']}, {packages}.",
        f"- Commit {commit}{dirty}; seeds {env['seeds']}; summarized {env['timestamp']}.",
        f"- Time of the parts (summed over the calls, which may have run side by side): "
        f"{wall or 'not recorded'}.",
    ]


_KEEP_TEXT = {
    "all": "the weights of every trained network",
    "best": "the weights of the best network of every run only (the rows above)",
    "timed": "the weights of the network timed above only",
}


def _stored(record: dict[str, Any]) -> list[str]:
    """What the output folder holds, and why (``keep_networks`` of the suite)."""
    networks = record.get("networks")
    if not networks:
        return []
    kept = ", ".join(networks["kept"]) or "none"
    removed = networks["removed"]
    return [
        "",
        "## What is stored",
        "",
        "The folder holds the studies (`<part>.db`: every trial's configuration, metrics and "
        "constraints), `results.json`, this page and `figures/`, and under `artifacts/` "
        f"{_KEEP_TEXT[networks['keep']]}: {kept} ({networks['bytes'] / 1e6:.1f} MB; "
        f'`keep_networks = "{networks["keep"]}"`'
        + (f", {removed} other networks' weights removed" if removed else "")
        + "). A network is about 10 MB; the studies are enough to retrain any of them.",
    ]


def _supernet(record: dict[str, Any]) -> list[str]:
    """The suite's supernet: how far it trained and its validation accuracies per epoch."""
    supernet = record.get("supernet")
    if not supernet:
        return []
    digest = supernet["weights_sha256"]
    lines = [
        "## Supernet",
        "",
        "Every candidate inherited its weights from the supernet the suite trained (part "
        f"`supernet`, folder `{supernet['folder']}/`): {supernet['epochs_done']} of "
        f"{supernet['epochs_planned']} epochs"
        + ("" if supernet["complete"] else " (unfinished)")
        + f", {supernet['train_seconds']:.0f} s of training"
        + (f", weights SHA-256 `{digest[:16]}…`" if digest else "")
        + ". Validation accuracy (%) of the largest and smallest subnets, final exit:",
        "",
        "| epoch | largest | smallest |",
        "|---|---|---|",
    ]
    for row in supernet["val_accuracy"]:
        largest, smallest = row["largest"]["final_accuracy"], row["smallest"]["final_accuracy"]
        lines.append(f"| {row['epoch']} | {largest * 100:.2f} | {smallest * 100:.2f} |")
    return [*lines, ""]


def results_markdown(record: dict[str, Any]) -> str:
    """The Markdown summary of a suite's result record (``results.json``)."""
    suite = record["suite"]
    reference = suite.get("reference") or {}
    subset = suite["train_subset"]
    lines = [
        f"# Benchmark suite `{suite['name']}`",
        "",
        suite["description"].strip(),
        "",
        f"Dataset `{suite['dataset']}` at {suite['resolution']}x{suite['resolution']}"
        + (f", {subset:,} training images" if subset else ", all training images")
        + f"; budget {suite['max_avg_macs'] / 1e6:.3g} M average MACs, accuracy floor "
        f"{suite['min_accuracy']:.2f}; seeds {suite['seeds']}. Each run's network is chosen on "
        "the validation split (the most accurate admissible network by its validation "
        "figures); the accuracy and MACs shown are its test-split figures (mean ± standard "
        "deviation over seeds); the hypervolume is that of the admissible front on validation "
        "figures, normalized by the box between the floor, the budget, accuracy 1 and 0 MACs. "
        "Our average MACs count the heads of the earlier exits a sample passed (convention "
        "`nachos`); the reference's omit them (convention `reference`): the column beside "
        "the reference's numbers recounts our chosen networks that way.",
        "",
        *_headline(record),
        "",
    ]
    if reference:
        lines += [
            f"Reference numbers: {reference.get('source', '')}".rstrip(),
            "",
        ]
    if suite["differences"]:
        lines += ["What differs from the reference set-up:", ""]
        lines += [f"- {d}" for d in suite["differences"]]
        lines.append("")
    lines += _across_seeds(record)
    lines += _supernet(record)
    lines += ["## Every run", "", *_per_run(record), "", "## Efficiency", "", *_efficiency(record)]
    figures = record.get("figures") or {}
    pngs = {k: v for k, v in figures.items() if v.endswith(".png")}
    if pngs:
        lines += ["", "## Figures", ""]
        lines += [f"![{name}]({path})" for name, path in pngs.items()]
    lines += _stored(record)
    lines += ["", "## Environment", "", *_environment(record), ""]
    return "\n".join(lines)
