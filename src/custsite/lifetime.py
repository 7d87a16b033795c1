"""Who is still with us: the BG/NBD model for the probability that a buyer is still active and
their expected purchases, and the Gamma-Gamma model for their spend, which together give a
customer lifetime value.

After Fader, Hardie & Lee, "Counting Your Customers the Easy Way: An Alternative to the
Pareto/NBD Model" (Marketing Science, 2005), and Fader, Hardie & Lee, "RFM and CLV: Using
Iso-Value Curves for Customer Base Analysis" (Journal of Marketing Research, 2005), with the
Gamma-Gamma spend model of Fader & Hardie's note "The Gamma-Gamma Model of Monetary Value"
(2013). The likelihoods are written here with numpy and scipy's special functions, because
the `lifetimes` package that implements them is no longer maintained and pulls pandas in;
the CDNOW test reproduces the published estimates.

Only what buyers did is used: for each buyer, the purchase occasions (purchases on the same
day count as one, their amounts summed) up to the build date give `x` (repeat occasions),
`t_x` (time from the first to the last occasion) and `T` (time from the first occasion to the
build date), and the mean value of the repeat occasions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .model import Interaction

if TYPE_CHECKING:
    import numpy as np

# numpy and scipy are imported where a model is fitted or applied, not with this module: they
# cost a third of a second, which `custsite validate`, a build with nothing to do and small
# portfolios need not pay.

MODEL_VERSION = 2  # a cached fit made by another version is never trusted
UNIT_DAYS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}
MONTH_DAYS = 365.25 / 12


@dataclass(frozen=True)
class LifetimeSettings:
    """`lifetime:` in custsite.yaml."""

    time_unit: str = "weeks"
    horizon_days: int = 90  # expected purchases over this many days
    clv_months: int = 12  # lifetime value over this many months...
    discount_rate: float = 0.10  # ...discounted at this yearly rate
    min_buyers: int = 50  # below these counts a fit is not stable enough to show
    min_repeat_buyers: int = 20
    at_risk_below: float = 0.5  # the dashboard's "valuable customers at risk"


@dataclass(frozen=True)
class History:
    """A buyer's purchase history at the build date, in the configured time unit."""

    x: int  # repeat purchase occasions
    t_x: float  # from the first to the last occasion
    T: float  # from the first occasion to the build date
    mean_spend: float | None  # mean value of the repeat occasions; None without any
    currency: str


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    log_likelihood: float

    @property
    def mean_spend(self) -> float | None:
        """The population's mean spend per purchase; infinite (None) when q <= 1."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else None


@dataclass(frozen=True)
class Estimate:
    """What the models say of one buyer."""

    history: History
    p_alive: float
    expected_purchases: float
    clv: Decimal | None  # None: spend in another currency, or no stable spend model


@dataclass(frozen=True)
class LifetimeModel:
    """The fitted models, or why there are none."""

    settings: LifetimeSettings
    buyers: int
    repeat_buyers: int
    bgnbd: BgNbd | None = None
    spend: GammaGamma | None = None
    spend_buyers: int = 0  # repeat buyers in the portfolio's currency, that the spend model saw
    reason: str = ""  # why a model is missing, in words
    # The key of the histories it was fitted on (see fit), for the estimates kept with it.
    histories_key: str = field(default="", repr=False, compare=False)

    @property
    def fitted(self) -> bool:
        return self.bgnbd is not None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def history(purchases: Sequence[Interaction], as_of: dt.date, unit_days: float,
            currency: str) -> History | None:
    """The buyer's history from their purchases (oldest first); None without a purchase."""
    occasions: dict[dt.date, Decimal] = {}
    for p in purchases:
        if p.day <= as_of:
            occasions[p.day] = occasions.get(p.day, Decimal(0)) + (p.amount or Decimal(0))
    if not occasions:
        return None
    days = sorted(occasions)
    first, last = days[0], days[-1]
    repeat = [occasions[d] for d in days[1:]]
    mean = float(sum(repeat, Decimal(0)) / len(repeat)) if repeat else None
    return History(len(repeat), (last - first).days / unit_days, (as_of - first).days / unit_days,
                   mean, currency)


def _bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                          T: np.ndarray) -> tuple[float, np.ndarray]:
    """The BG/NBD log-likelihood of all buyers (eq. 6 of the paper) and its gradient in
    (r, alpha, a, b): with the gradient, the optimiser needs a fifth of the evaluations that
    finite differences take (tests/test_lifetime.py checks it against them)."""
    import numpy as np
    from scipy import special

    r, alpha, a, b = params
    ln_a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    ln_a2 = (special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b)
             - special.gammaln(a + b + x))
    alpha_T, alpha_tx = alpha + T, alpha + t_x
    ln_alpha_T, ln_alpha_tx = np.log(alpha_T), np.log(alpha_tx)
    ln_a3 = -(r + x) * ln_alpha_T
    repeat = x > 0
    ln_a4 = np.full_like(ln_a3, -np.inf)
    ln_a4[repeat] = (np.log(a) - np.log(b + x[repeat] - 1)
                     - (r + x[repeat]) * ln_alpha_tx[repeat])
    last = np.logaddexp(ln_a3, ln_a4)
    total = float(np.sum(ln_a1 + ln_a2 + last))
    # The last factor is a sum of two terms: their shares of it weigh their derivatives.
    w3, w4 = np.exp(ln_a3 - last), np.exp(ln_a4 - last)
    psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + x)
    after_b = np.zeros_like(w4)
    after_b[repeat] = w4[repeat] / (b + x[repeat] - 1)
    gradient = np.array([
        np.sum(special.digamma(r + x) - special.digamma(r) + np.log(alpha)
               - w3 * ln_alpha_T - w4 * ln_alpha_tx),
        np.sum(r / alpha - (r + x) * (w3 / alpha_T + w4 / alpha_tx)),
        np.sum(psi_ab - psi_abx + w4 / a),
        np.sum(psi_ab + special.digamma(b + x) - special.digamma(b) - psi_abx - after_b)])
    return total, gradient


def _gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray,
                                m: np.ndarray) -> tuple[float, np.ndarray]:
    """The Gamma-Gamma log-likelihood of the repeat buyers' mean spends and its gradient in
    (p, q, gamma)."""
    import numpy as np
    from scipy import special

    p, q, gamma = params
    px = p * x
    gm = gamma + m * x
    ln_gm = np.log(gm)
    total = float(np.sum(special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
                         + q * np.log(gamma) + (px - 1) * np.log(m) + px * np.log(x)
                         - (px + q) * ln_gm))
    psi_pxq = special.digamma(px + q)
    gradient = np.array([
        np.sum(x * (psi_pxq - special.digamma(px) + np.log(m) + np.log(x) - ln_gm)),
        np.sum(psi_pxq - special.digamma(q) + np.log(gamma) - ln_gm),
        np.sum(q / gamma - (px + q) / gm)])
    return total, gradient


LOG_BOUND = 12.0  # parameters stay within e^-12 .. e^12: a flat likelihood cannot run away
# A gradient this small, relative to the log-likelihood (per unit of log-parameter), is flat.
FLAT = 1e-4


def _maximise(log_likelihood: Callable[[np.ndarray], tuple[float, np.ndarray]],
              start: Sequence[float]) -> tuple[np.ndarray, float] | None:
    """Maximum likelihood over positive parameters, optimised on their logarithms with
    L-BFGS-B, given the log-likelihood and its gradient. When buyers do not differ in a
    respect (every buyer stops with the same probability, say), the likelihood has no peak
    but a flat ridge out to infinity: the optimiser stops on it without claiming
    convergence, and a flat gradient there is accepted, since every point of the ridge gives
    the same estimates."""
    import numpy as np
    from scipy import optimize

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        with np.errstate(all="ignore"):
            total, gradient = log_likelihood(params)
            by_log = gradient * params  # d/d log p = p d/dp
        if not math.isfinite(total) or not np.all(np.isfinite(by_log)):
            return 1e300, np.zeros_like(log_params)
        return -total, -by_log

    result = optimize.minimize(negative, np.log(np.asarray(start, dtype=float)), jac=True,
                               method="L-BFGS-B", bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
                               options={"maxiter": 5_000, "ftol": 1e-15, "gtol": 1e-9})
    if not math.isfinite(result.fun) or result.fun >= 1e300:
        return None
    if not result.success and \
            float(np.max(np.abs(result.jac))) > FLAT * max(1.0, abs(float(result.fun))):
        return None
    return np.exp(result.x), -float(result.fun)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BgNbd | None:
    """BG/NBD parameters by maximum likelihood; None when the optimiser does not converge."""
    import numpy as np

    found = _maximise(lambda params: _bgnbd_log_likelihood(params, x, t_x, T),
                      (1.0, max(float(np.mean(T)), 1e-3), 1.0, 1.0))
    if found is None:
        return None
    (r, alpha, a, b), ll = found
    return BgNbd(float(r), float(alpha), float(a), float(b), ll)


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray) -> GammaGamma | None:
    """Gamma-Gamma parameters from repeat buyers' occasions and mean spends (all > 0)."""
    import numpy as np

    found = _maximise(lambda params: _gamma_gamma_log_likelihood(params, x, m),
                      (1.0, 1.0, max(float(np.mean(m)), 1e-3)))
    if found is None:
        return None
    (p, q, gamma), ll = found
    return GammaGamma(float(p), float(q), float(gamma), ll)


def _conditional(model: BgNbd, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                 t: float) -> tuple[np.ndarray, np.ndarray]:
    """P(alive) and the expected purchases in the next `t` units (eq. 10 of the paper)."""
    import numpy as np
    from scipy import special

    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    with np.errstate(all="ignore"):
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300)
                        * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
        p_alive = 1.0 / (1.0 + odds)
        if t <= 0:
            return p_alive, np.zeros_like(p_alive)
        z = t / (alpha + T + t)
        hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        expected = ((a + b + x - 1) / (a - 1)
                    * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper)) * p_alive
    return p_alive, np.where(np.isfinite(expected), np.maximum(expected, 0.0), 0.0)


def fit_key(histories: Sequence[History], settings: LifetimeSettings, currency: str) -> str:
    """What a fit of these histories is kept under (see fit)."""
    digest = hashlib.sha256(repr((MODEL_VERSION, settings, currency)).encode())
    for h in histories:
        digest.update(repr((h.x, h.t_x, h.T, h.mean_spend, h.currency)).encode())
    return digest.hexdigest()


def fit(histories: Sequence[History], settings: LifetimeSettings, currency: str,
        cache: MutableMapping[str, str] | None = None) -> LifetimeModel:
    """Fit both models on the buyers' histories, unless there are too few buyers; `cache`
    keeps fits by the histories they were made from (a new custsite never trusts an old
    one: the key holds MODEL_VERSION)."""
    buyers = len(histories)
    repeat = sum(1 for h in histories if h.x > 0)
    if buyers < settings.min_buyers or repeat < settings.min_repeat_buyers:
        return LifetimeModel(settings, buyers, repeat, reason=(
            f"{_count(buyers, 'buyer')}, {repeat} of them bought more than once: the model "
            f"needs at least {settings.min_buyers} buyers and {settings.min_repeat_buyers} "
            "repeat buyers (lifetime.min_buyers, lifetime.min_repeat_buyers) for estimates "
            "worth showing"))
    key = fit_key(histories, settings, currency)
    kept = _from_json(cache.get(key), settings, buyers, repeat) if cache is not None else None
    if kept is not None:
        return replace(kept, histories_key=key)
    import numpy as np

    x = np.array([h.x for h in histories], dtype=float)
    t_x = np.array([h.t_x for h in histories], dtype=float)
    T = np.array([h.T for h in histories], dtype=float)
    bgnbd = fit_bgnbd(x, t_x, T)
    if bgnbd is None:
        model = LifetimeModel(settings, buyers, repeat, reason=(
            "the purchase-count model did not converge on these purchases"))
    else:
        spenders = [h for h in histories if h.x > 0 and h.currency == currency
                    and h.mean_spend is not None and h.mean_spend > 0]
        spend = None
        reason = ""
        if len(spenders) >= settings.min_repeat_buyers:
            spend = fit_gamma_gamma(np.array([h.x for h in spenders], dtype=float),
                                    np.array([h.mean_spend for h in spenders], dtype=float))
            if spend is None or spend.mean_spend is None:
                reason = "the spend model found no stable mean spend: no lifetime values"
                spend = None
        else:
            reason = (f"{len(spenders)} repeat buyers with amounts in {currency}: too few for "
                      "the spend model, so no lifetime values")
        model = LifetimeModel(settings, buyers, repeat, bgnbd, spend, len(spenders), reason)
    if cache is not None:
        cache[key] = _to_json(model)
    return replace(model, histories_key=key)


def _to_json(model: LifetimeModel) -> str:
    return json.dumps({"bgnbd": model.bgnbd.__dict__ if model.bgnbd else None,
                       "spend": model.spend.__dict__ if model.spend else None,
                       "spend_buyers": model.spend_buyers, "reason": model.reason},
                      sort_keys=True)


def _from_json(text: str | None, settings: LifetimeSettings, buyers: int,
               repeat: int) -> LifetimeModel | None:
    """A kept fit; None unless the text is one (a damaged or planted cache file is fitted
    again, never trusted)."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        bgnbd = BgNbd(**data["bgnbd"]) if data["bgnbd"] is not None else None
        spend = GammaGamma(**data["spend"]) if data["spend"] is not None else None
        numbers = [*(bgnbd.__dict__.values() if bgnbd else ()),
                   *(spend.__dict__.values() if spend else ())]
        if not all(type(n) is float and math.isfinite(n) for n in numbers) or \
                type(data["spend_buyers"]) is not int or type(data["reason"]) is not str:
            return None
        return LifetimeModel(settings, buyers, repeat, bgnbd, spend, data["spend_buyers"],
                             data["reason"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


ESTIMATES = "estimates:"  # the key of kept estimates in a fits cache starts with this
_CLV_RE = re.compile(r"-?\d{1,15}\.\d\d")  # as estimate writes a value, and no other


def estimate(model: LifetimeModel, histories: Sequence[History], currency: str,
             cache: MutableMapping[str, str] | None = None) -> list[Estimate]:
    """Each buyer's probability of being alive, expected purchases over the horizon and
    lifetime value (discounted monthly over `clv_months`), for the `histories` the model was
    fitted on. `cache` keeps them by those histories and the model: a build after an edit
    that changed no purchase loads neither numpy nor scipy."""
    if model.bgnbd is None or not histories:
        return []
    if cache is None:
        return _estimate(model, histories, currency)
    fitted_on = model.histories_key or fit_key(histories, model.settings, currency)
    key = ESTIMATES + hashlib.sha256((fitted_on + _to_json(model)).encode()).hexdigest()
    kept = _estimates_from_json(cache.get(key), histories)
    if kept is not None:
        return kept
    found = _estimate(model, histories, currency)
    cache[key] = json.dumps([[e.p_alive, e.expected_purchases,
                              None if e.clv is None else str(e.clv)] for e in found])
    return found


def _estimates_from_json(text: str | None, histories: Sequence[History]) -> list[Estimate] | None:
    """Kept estimates, one per history; None unless the text is exactly that (a damaged or
    planted cache file is never half-trusted)."""
    if text is None:
        return None
    try:
        rows = json.loads(text)
        if not isinstance(rows, list) or len(rows) != len(histories):
            return None
        out = []
        for h, (p_alive, expected, clv) in zip(histories, rows, strict=True):
            value = None if clv is None else Decimal(clv)
            if type(p_alive) is not float or not 0 <= p_alive <= 1 or \
                    type(expected) is not float or not 0 <= expected < math.inf or \
                    not (value is None or _CLV_RE.fullmatch(clv)):
                return None
            out.append(Estimate(h, p_alive, expected, value))
    except (ValueError, TypeError, ArithmeticError):
        return None
    return out


def _estimate(model: LifetimeModel, histories: Sequence[History],
              currency: str) -> list[Estimate]:
    import numpy as np

    assert model.bgnbd is not None
    s = model.settings
    unit = UNIT_DAYS[s.time_unit]
    x = np.array([h.x for h in histories], dtype=float)
    t_x = np.array([h.t_x for h in histories], dtype=float)
    T = np.array([h.T for h in histories], dtype=float)
    p_alive, expected = _conditional(model.bgnbd, x, t_x, T, s.horizon_days / unit)
    clv: np.ndarray | None = None
    if model.spend is not None:
        g = model.spend
        m = np.array([h.mean_spend or 0.0 for h in histories], dtype=float)
        spend = np.where(x > 0, (g.gamma + m * x) * g.p / (g.p * x + g.q - 1),
                         g.p * g.gamma / (g.q - 1))
        monthly = (1 + s.discount_rate) ** (1 / 12) - 1
        clv = np.zeros_like(x)
        before = np.zeros_like(x)
        for month in range(1, s.clv_months + 1):
            _, by_then = _conditional(model.bgnbd, x, t_x, T, month * MONTH_DAYS / unit)
            clv += (by_then - before) * spend / (1 + monthly) ** month
            before = by_then
    out = []
    for n, h in enumerate(histories):
        value = None
        if clv is not None and h.currency == currency and math.isfinite(clv[n]):
            value = Decimal(f"{clv[n]:.2f}")
        out.append(Estimate(h, round(float(p_alive[n]), 4), round(float(expected[n]), 4),
                            value))
    return out


def model_data(model: LifetimeModel | None) -> dict[str, Any]:
    """The models as data (stats, the model page's JSON): parameters, or why there are none."""
    if model is None:
        return {"fitted": False, "reason": "not computed"}
    s = model.settings
    return {
        "fitted": model.fitted, "reason": model.reason or None, "buyers": model.buyers,
        "repeat_buyers": model.repeat_buyers, "time_unit": s.time_unit,
        "horizon_days": s.horizon_days, "clv_months": s.clv_months,
        "discount_rate": s.discount_rate,
        "bgnbd": asdict(model.bgnbd) if model.bgnbd else None,
        "spend": asdict(model.spend) if model.spend else None,
        "spend_buyers": model.spend_buyers,
    }
