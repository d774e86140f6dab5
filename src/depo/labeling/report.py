"""What the labeled data looks like: per-label statistics and histograms of tokens/step and steps."""
from __future__ import annotations

from pathlib import Path

import polars as pl


def labeling_summary(depo_dataset: pl.DataFrame) -> pl.DataFrame:
    """Per env and label: count, mean steps, mean tokens/step, mean total tokens, mean reward."""
    return (
        depo_dataset.group_by(["env", "label"])
        .agg(
            pl.len().alias("count"),
            pl.col("steps").mean().alias("mean_steps"),
            pl.col("avg_tokens_per_step").mean().alias("mean_tokens_per_step"),
            pl.col("total_tokens").mean().alias("mean_total_tokens"),
            pl.col("reward").mean().alias("mean_reward"),
        )
        .sort(["env", "label"], descending=[False, True])
    )


def plot_label_histograms(depo_dataset: pl.DataFrame, path: str | Path | None = None):
    """Histograms of tokens/step and steps, desirable vs undesirable, one row of panels per env.

    Returns the figure (Kedro's matplotlib dataset saves it); also saved to `path` when given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if depo_dataset.is_empty():
        raise ValueError("depo_dataset is empty: nothing to plot")
    # Imported data may lack the env; it is then plotted as one group.
    dataset = depo_dataset.with_columns(pl.col("env").fill_null("unknown env"))
    envs = sorted(dataset["env"].unique().to_list())
    figure, axes = plt.subplots(len(envs), 2, figsize=(10, 3.2 * len(envs)), squeeze=False)
    for row, env in enumerate(envs):
        env_rows = dataset.filter(pl.col("env") == env)
        for column, (field, title) in enumerate((("avg_tokens_per_step", "tokens / step"), ("steps", "steps"))):
            axis = axes[row][column]
            values = env_rows[field].drop_nulls()
            if values.is_empty():
                axis.set_title(f"{env}: {title} (no values)")
                continue
            bins = min(30, max(5, values.n_unique()))
            edges = _bin_edges(float(values.min()), float(values.max()), bins)
            for label, name, color in ((True, "desirable", "tab:green"), (False, "undesirable", "tab:red")):
                subset = env_rows.filter(pl.col("label") == label)[field].drop_nulls().to_list()
                if subset:
                    axis.hist(subset, bins=edges, alpha=0.55, label=f"{name} (n={len(subset)})", color=color)
            axis.set_title(f"{env}: {title}")
            axis.set_xlabel(title)
            axis.set_ylabel("trajectories")
            axis.legend()
    figure.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    return figure


def _bin_edges(low: float, high: float, bins: int) -> list[float]:
    if high <= low:
        return [low - 0.5, low + 0.5]
    width = (high - low) / bins
    return [low + i * width for i in range(bins + 1)]
