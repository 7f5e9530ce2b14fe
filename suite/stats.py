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


# Seeds as replicates ------------------------------------------------------------------------------
#
# A configuration trained with S seeds and scored on the same n problems gives an S x n matrix of
# per-problem values (0/1 correctness, or after - before differences for a paired delta). Its number
# is the grand mean; how much that number would move if the experiment were redone has two sources:
# training variance (another seed gives another checkpoint: 2-3 points on the toy world, issue 11)
# and problem sampling (another n problems from the same distribution). The one-level paired
# bootstrap over problems sees only the second.


def _two_level_replicates(values_S_N, problem_idx_B_N, rng):
    """Bootstrap replicates of the grand mean for one S x n matrix, given the problem draw of each replicate.

    Each replicate resamples S seeds with replacement and, within each of them, the replicate's problem
    draw (the same draw for every seed: see :func:`two_level_bootstrap_ci`).
    """
    import numpy as np

    values = np.asarray(values_S_N, dtype=float)
    # per_seed_S_B[s, b]: seed s's mean over replicate b's problem draw
    per_seed_S_B = np.stack([row[problem_idx_B_N].mean(axis=1) for row in values])
    seed_idx_B_S = rng.integers(0, values.shape[0], size=(problem_idx_B_N.shape[0], values.shape[0]))
    return np.take_along_axis(per_seed_S_B.T, seed_idx_B_S, axis=1).mean(axis=1)


def _check_matrix(name: str, values_S_N) -> tuple[int, int]:
    shape = (len(values_S_N), len(values_S_N[0]) if len(values_S_N) else 0)
    if shape[0] == 0 or shape[1] == 0 or any(len(row) != shape[1] for row in values_S_N):
        raise ValueError(f"{name}: need a non-empty seeds x problems matrix with one value per problem for every "
                         f"seed (got row lengths {[len(r) for r in values_S_N]})")
    return shape


def two_level_bootstrap_ci(values_S_N, iters: int = 10_000, seed: int = 0,
                           level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the grand mean of an S seeds x n problems matrix: seeds, then problems.

    Each of ``iters`` replicates draws S seeds with replacement (training variance), then n problems with
    replacement, and averages the drawn problems over the drawn seeds. The problem draw is **shared by the
    seeds of a replicate**, because seeds and problems are crossed, not nested: every seed is scored on
    the same n problems, so what a redone experiment would change is *one* set of problems for all seeds.
    Drawing problems independently per seed would average S independent problem draws and shrink the
    problem-sampling part of the variance by a factor S (too narrow an interval); the shared draw keeps
    it whole. The variance this bootstraps is about ``var_seeds / S + var_problems / n`` plus the
    seed x problem interaction twice (slightly conservative, as the two-way bootstrap is known to be).
    With few seeds the seed part is the weak one: a bootstrap over S values has (S-1)/S of their
    variance and never reaches beyond them, so with 3 seeds the interval is a floor on the uncertainty.

    Exact consequences (tested): with one seed this is :func:`paired_bootstrap_ci` / the one-level
    bootstrap over problems, replicate for replicate; when every seed has the same per-problem values
    (no training variance) the interval equals that one-level interval; when each seed's values are
    constant across problems (no problem variance) it is the percentile bootstrap over seed means.

    For a paired delta pass the per-problem differences ``after - before`` of each seed.
    """
    import numpy as np

    _, n = _check_matrix("two_level_bootstrap_ci", values_S_N)
    rng = np.random.default_rng(seed)
    problem_idx_B_N = rng.integers(0, n, size=(iters, n))  # first, as in paired_bootstrap_ci: same draws
    means = _two_level_replicates(values_S_N, problem_idx_B_N, rng)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def two_level_bootstrap_diff_ci(a_S_N, b_S_N, iters: int = 10_000, seed: int = 0,
                                level: float = 0.95) -> tuple[float, float]:
    """Interval of ``mean(b) - mean(a)`` for two configurations scored on the same n problems.

    The two configurations' seeds are independent training runs, so each side's seeds are resampled
    on their own; the problems are the same for both, so one problem draw per replicate is shared by
    both sides (a paired comparison over problems). With one seed on each side this is the paired
    bootstrap over problems of ``b - a``.
    """
    import numpy as np

    _, n = _check_matrix("two_level_bootstrap_diff_ci (a)", a_S_N)
    _, n_b = _check_matrix("two_level_bootstrap_diff_ci (b)", b_S_N)
    if n != n_b:
        raise ValueError(f"two_level_bootstrap_diff_ci: both sides must be scored on the same problems ({n} != {n_b})")
    rng = np.random.default_rng(seed)
    problem_idx_B_N = rng.integers(0, n, size=(iters, n))
    diff = _two_level_replicates(b_S_N, problem_idx_B_N, rng) - _two_level_replicates(a_S_N, problem_idx_B_N, rng)
    alpha = (1 - level) / 2
    return float(np.quantile(diff, alpha)), float(np.quantile(diff, 1 - alpha))


def seed_aggregate(values_S_N, iters: int = 10_000, seed: int = 0) -> dict:
    """One line for S replicates: grand mean, per-seed means, S, n and the two-level 95% interval."""
    seeds, n = _check_matrix("seed_aggregate", values_S_N)
    per_seed = [sum(row) / n for row in values_S_N]
    return {"mean": sum(per_seed) / seeds, "ci95": list(two_level_bootstrap_ci(values_S_N, iters, seed)),
            "per_seed": per_seed, "seeds": seeds, "n": n,
            "ci_method": f"two-level bootstrap (seeds, then problems shared across seeds), {iters} resamples"}
