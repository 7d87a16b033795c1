"""Time to fit and apply the lifetime models (BG/NBD and Gamma-Gamma) at team scale.

    python benchmarks/lifetime.py [--buyers 10000] [--runs 5]

Simulates buyers from the BG/NBD process itself (CDNOW-like parameters: r=0.24, α=4.41,
a=0.79, b=2.43, weeks; spend from a Gamma-Gamma with p=6.25, q=3.74, γ=15.44), then times,
as medians with min and max, the fit of both models and the estimates of every buyer, and
prints how close the fitted parameters are to the ones the data came from. Writes the figures
as JSON. The same arguments always give the same buyers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from custsite.lifetime import History, LifetimeSettings, estimate, fit

TRUE = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43, "p": 6.25, "q": 3.74, "gamma": 15.44}


def simulate(buyers: int, seed: int = 7) -> list[History]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(buyers):
        rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"])
        dropout = rng.beta(TRUE["a"], TRUE["b"])
        age = rng.uniform(1, 39)  # weeks since the first purchase
        times = [0.0]
        while True:
            nxt = times[-1] + rng.exponential(1 / max(rate, 1e-9))
            if nxt > age:
                break
            times.append(nxt)
            if rng.random() < dropout:  # gone after this repeat purchase
                break
        x = len(times) - 1
        # Each buyer's mean spend: gamma(p, ν) per purchase, ν ~ gamma(q, γ).
        nu = rng.gamma(TRUE["q"], 1 / TRUE["gamma"])
        mean = float(np.mean(rng.gamma(TRUE["p"], 1 / nu, size=x))) if x else None
        out.append(History(x, times[-1], age, mean, "USD"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/lifetime.json"))
    args = parser.parse_args()
    histories = simulate(args.buyers)
    settings = LifetimeSettings()
    fits, estimates = [], []
    model = None
    for _ in range(args.runs):
        start = time.perf_counter()
        model = fit(histories, settings, "USD")
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        estimate(model, histories, "USD")
        estimates.append(time.perf_counter() - start)
    assert model is not None and model.bgnbd is not None and model.spend is not None
    fitted = {"r": model.bgnbd.r, "alpha": model.bgnbd.alpha, "a": model.bgnbd.a,
              "b": model.bgnbd.b, "p": model.spend.p, "q": model.spend.q,
              "gamma": model.spend.gamma}

    def figures(values: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
                "max": round(max(values), 3)}

    data = {"buyers": args.buyers, "repeat_buyers": model.repeat_buyers, "runs": args.runs,
            "fit_s": figures(fits), "estimate_s": figures(estimates),
            "parameters": {k: {"true": TRUE[k], "fitted": round(v, 3)}
                           for k, v in fitted.items()}}
    print(f"lifetime models on {args.buyers:,} simulated buyers "
          f"({model.repeat_buyers:,} repeat buyers), {args.runs} runs")
    for name in ("fit_s", "estimate_s"):
        f = data[name]
        assert isinstance(f, dict)
        print(f"  {name[:-2]:<9} median {f['median']:.3f} s (min {f['min']:.3f}, "
              f"max {f['max']:.3f})")
    print("  parameters (true → fitted): " + ", ".join(
        f"{k} {TRUE[k]} → {v:.3f}" for k, v in fitted.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
