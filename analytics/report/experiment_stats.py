"""The statistics of an experiment's results, in plain Python (no SciPy here; fast enough to run
an A/A experiment thousands of times in a test).

Each variant's conversion rate gets a Beta(1 + converted, 1 + exposed - converted) posterior (a
uniform prior). Reported per variant: the posterior's 95 % credible interval (equal tails), the
difference of its mean against the control's with a 95 % interval (normal approximation of the
two posteriors, fine from a few dozen people up), and the chance that its rate beats the
control's, P(p_variant > p_control), computed exactly (Evan Miller's closed form, a sum of
`converted + 1` terms) up to EXACT_TERMS terms and by the normal approximation beyond.

A verdict is given only when every arm has at least the minimum sample: "better" when the chance
to beat the control is at least 97.5 %, "worse" when at most 2.5 % (together a 5 % false-positive
rate for one variant against an identical control, checked in tests), else "no clear difference".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DECISION = 0.975
EXACT_TERMS = 20_000
Z95 = 1.959963984540054


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b): P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b))
    # The fraction converges quickly on this side of the mean; use the symmetry on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = q: Newton's method from the normal approximation, kept inside a
    bisection bracket (the CDF is monotone), to 1e-12."""
    low, high = 0.0, 1.0
    mean, var = _mean_var(a, b)
    z = math.sqrt(2) * _inverse_erf(2 * q - 1)
    x = min(max(mean + z * math.sqrt(var), 1e-12), 1 - 1e-12)
    log_norm = _log_beta(a, b)
    for _ in range(100):
        error = beta_cdf(x, a, b) - q
        if error < 0:
            low = x
        else:
            high = x
        density = math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - log_norm)
        step = x - error / density if density > 0 else -1.0
        if not low < step < high:
            step = (low + high) / 2
        if abs(step - x) < 1e-12 or high - low < 1e-12:
            return step
        x = step
    return x


def _inverse_erf(y: float) -> float:
    """erf⁻¹ by Newton's method on math.erf (a starting point for beta_quantile)."""
    x = 0.0
    for _ in range(50):
        step = (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
        x -= step
        if abs(step) < 1e-12:
            break
    return x


def _mean_var(a: float, b: float) -> tuple[float, float]:
    return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))


def chance_to_beat(
    converted: int, exposed: int, control_converted: int, control_exposed: int
) -> float:
    """P(p_B > p_A) for B ~ Beta(1 + converted, 1 + failures), A likewise for the control."""
    a_b, b_b = 1 + converted, 1 + exposed - converted
    a_a, b_a = 1 + control_converted, 1 + control_exposed - control_converted
    if a_b <= EXACT_TERMS:
        total = 0.0
        base = -_log_beta(a_a, b_a)
        for i in range(a_b):
            total += math.exp(
                base + _log_beta(a_a + i, b_a + b_b) - math.log(b_b + i) - _log_beta(1 + i, b_b)
            )
        return min(1.0, max(0.0, total))
    mean_b, var_b = _mean_var(a_b, b_b)
    mean_a, var_a = _mean_var(a_a, b_a)
    z = (mean_b - mean_a) / math.sqrt(var_a + var_b)
    return 0.5 * math.erfc(-z / math.sqrt(2))


@dataclass(frozen=True)
class ArmCounts:
    variant: str
    exposed: int
    converted: int


@dataclass(frozen=True)
class ArmStatistics:
    variant: str
    is_control: bool
    exposed: int
    converted: int
    rate: float | None
    interval: tuple[float, float]  # 95 % credible interval of the rate
    difference: float | None  # posterior mean minus the control's
    difference_interval: tuple[float, float] | None
    chance_to_beat_control: float | None
    verdict: str  # control, better, worse, no clear difference, not enough data


def arm_statistics(arms: Sequence[ArmCounts], *, minimum_sample: int) -> list[ArmStatistics]:
    """The statistics of each arm; the first is the control."""
    control = arms[0]
    enough = all(arm.exposed >= minimum_sample for arm in arms)
    a_c, b_c = 1 + control.converted, 1 + control.exposed - control.converted
    mean_c, var_c = _mean_var(a_c, b_c)
    results = []
    for index, arm in enumerate(arms):
        a, b = 1 + arm.converted, 1 + arm.exposed - arm.converted
        mean, var = _mean_var(a, b)
        interval = (beta_quantile(0.025, a, b), beta_quantile(0.975, a, b))
        rate = arm.converted / arm.exposed if arm.exposed else None
        if index == 0:
            results.append(
                ArmStatistics(
                    arm.variant,
                    True,
                    arm.exposed,
                    arm.converted,
                    rate,
                    interval,
                    None,
                    None,
                    None,
                    "control",
                )
            )
            continue
        spread = Z95 * math.sqrt(var + var_c)
        chance = chance_to_beat(arm.converted, arm.exposed, control.converted, control.exposed)
        if not enough:
            verdict = "not enough data"
        elif chance >= DECISION:
            verdict = "better"
        elif chance <= 1 - DECISION:
            verdict = "worse"
        else:
            verdict = "no clear difference"
        results.append(
            ArmStatistics(
                variant=arm.variant,
                is_control=False,
                exposed=arm.exposed,
                converted=arm.converted,
                rate=rate,
                interval=interval,
                difference=mean - mean_c,
                difference_interval=(mean - mean_c - spread, mean - mean_c + spread),
                chance_to_beat_control=chance,
                verdict=verdict,
            )
        )
    return results


def median(values: Sequence[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count)."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    if n % 2:
        return float(ordered[n // 2])
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2
