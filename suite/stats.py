"""Interval estimates for the numbers the suite reports."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a proportion ``successes / n`` (exact at 0 and n; (0, 1) when n=0)."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must lie in [0, n={n}]")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if successes == 0 else lo, 1.0 if successes == n else hi)  # exact ends, no float dust


def paired_bootstrap_ci(before: list[int], after: list[int], iters: int = 10_000, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(after) - mean(before)``, resampling problems (pairs)."""
    import numpy as np

    if len(before) != len(after) or not before:
        raise ValueError(f"paired samples need equal, non-zero lengths (got {len(before)} and {len(after)})")
    diff = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(iters, len(diff)))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def mcnemar_exact_p(before: list[int], after: list[int]) -> float | None:
    """Two-sided exact McNemar test: binomial(discordant pairs, 1/2) on the pairs that changed.

    None when the values are not all 0/1 (per-problem averages over k samples have no McNemar test).
    """
    if any(x not in (0, 1) for x in (*before, *after)):
        return None
    up = sum(1 for b, a in zip(before, after) if a and not b)
    down = sum(1 for b, a in zip(before, after) if b and not a)
    n, k = up + down, min(up, down)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct among ``n`` samples: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def bootstrap_mean_ci(values: list[float], iters: int = 10_000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem values (problems resampled)."""
    import numpy as np

    if not values:
        return (0.0, 1.0)
    arr = np.asarray(values, dtype=float)
    means = arr[np.random.default_rng(seed).integers(0, len(arr), size=(iters, len(arr)))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
