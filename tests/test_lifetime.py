"""Probability alive, expected purchases and lifetime value (BG/NBD and Gamma-Gamma).

The CDNOW sample (tests/fixtures/cdnow) turned into custsite records must give the estimates
published by Fader, Hardie & Lee (2005) at the end of their 39-week calibration period.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from custsite import fitting, lifetime
from custsite.build import CheckResult, check
from custsite.derive import Derived, derive
from custsite.lifetime import History, LifetimeSettings
from custsite.model import Interaction

from .conftest import ScratchFactory, run

CDNOW = Path(__file__).parent / "fixtures" / "cdnow" / "CDNOW_sample.txt"
CALIBRATION_END = dt.date(1997, 9, 30)
CONFIG = """\
title: CDNOW sample
currency: USD
as_of: 1997-09-30
segments:
  likely-to-churn:
    title: Likely to churn
    where:
      p_alive: {lt: 0.3}
      stage: repeat
"""


def write_cdnow(root: Path) -> None:
    """One contact per CDNOW customer, one interactions file each with all its purchases
    (those after the calibration end are in the records too: the build date ignores them)."""
    purchases: dict[str, list[str]] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        _, sample_id, day, cds, amount = line.split()
        date = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        purchases[sample_id].append(f"- {{customer: c-{sample_id}, date: {date}, "
                                    f"kind: purchase, amount: {amount}, quantity: {cds}}}")
    customers, interactions = root / "records/customers", root / "records/interactions"
    customers.mkdir(parents=True)
    interactions.mkdir(parents=True)
    (root / "custsite.yaml").write_text(CONFIG)
    for sample_id, items in purchases.items():
        (customers / f"c-{sample_id}.yaml").write_text(f"name: CDNOW customer {sample_id}\n")
        (interactions / f"c-{sample_id}.yaml").write_text("\n".join(items) + "\n")


@pytest.fixture(scope="module")
def cdnow_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cdnow")
    write_cdnow(root)
    return root


@pytest.fixture(scope="module")
def cdnow(cdnow_root: Path) -> CheckResult:
    return check(cdnow_root)


def test_cdnow_reproduces_the_published_bgnbd_estimates(cdnow: CheckResult) -> None:
    model = cdnow.derived.lifetime
    assert model is not None and model.bgnbd is not None, model
    assert (model.buyers, model.repeat_buyers) == (2357, 946)
    m = model.bgnbd
    assert (round(m.r, 3), round(m.alpha, 3), round(m.a, 3), round(m.b, 3)) == \
        (0.243, 4.414, 0.793, 2.426)
    assert round(m.log_likelihood, 1) == -9582.4


def test_cdnow_reproduces_the_published_gamma_gamma_estimates(cdnow: CheckResult) -> None:
    model = cdnow.derived.lifetime
    assert model is not None and model.spend is not None, model
    assert model.spend_buyers == 946
    for fitted, published in ((model.spend.p, 6.25), (model.spend.q, 3.74),
                              (model.spend.gamma, 15.44)):
        assert abs(fitted - published) / published < 0.005, (fitted, published)


def test_cdnow_buyer_estimates(cdnow: CheckResult) -> None:
    contacts = cdnow.derived.contacts
    # Customer 0001 bought on 1997-01-01, 01-18 and 08-02 before the calibration end.
    first = contacts["c-0001"].lifetime
    assert first is not None
    assert (first.history.x, round(first.history.t_x, 2), round(first.history.T, 2)) == \
        (2, 30.43, 38.86)
    assert first.history.mean_spend == pytest.approx(22.345)
    assert 0.6 < first.p_alive < 0.8
    assert first.clv is not None and first.clv > 0
    # A single purchase: alive for sure by the model's assumptions (no repeat, no dropout).
    single = next(c.lifetime for c in contacts.values()
                  if c.lifetime and c.lifetime.history.x == 0)
    assert single is not None and single.p_alive == 1.0
    # A repeat buyer silent for a long time is less likely alive than a recent one.
    silent = [c.lifetime for c in contacts.values() if c.lifetime and c.lifetime.history.x >= 2]
    assert silent
    oldest = max(silent, key=lambda e: e.history.T - e.history.t_x)
    newest = min(silent, key=lambda e: e.history.T - e.history.t_x)
    assert oldest.p_alive < newest.p_alive


def test_rules_read_p_alive(cdnow: CheckResult) -> None:
    churn = cdnow.derived.segments["likely-to-churn"]
    expected = sorted(cid for cid, c in cdnow.derived.contacts.items()
                      if c.stage == "repeat" and c.lifetime and c.lifetime.p_alive < 0.3)
    assert expected and sorted(churn.members) == expected


def test_same_day_purchases_are_one_occasion() -> None:
    def purchase(n: int, day: str, amount: str) -> Interaction:
        return Interaction(id=f"i{n}", path="x.yaml", customers=("c",),
                           date=dt.date.fromisoformat(day), kind="purchase",
                           amount=Decimal(amount))

    found = lifetime.history([purchase(1, "2026-01-01", "10"), purchase(2, "2026-01-15", "5"),
                              purchase(3, "2026-01-15", "7"), purchase(4, "2026-01-29", "20"),
                              purchase(5, "2026-09-01", "99")],
                             dt.date(2026, 2, 12), 7.0, "EUR")
    assert found == History(2, 4.0, 6.0, 16.0, "EUR")  # (12 + 20) / 2, 28 and 42 days


def test_too_few_buyers_say_so_and_fall_back(checked: object) -> None:
    assert callable(checked)
    result = checked({
        "records/customers/ann.yaml": "name: Ann\n",
        "records/interactions/ann.yaml":
            "- {customer: ann, date: 2026-01-10, kind: purchase, amount: 100}\n"
            "- {customer: ann, date: 2026-03-10, kind: purchase, amount: 80}\n",
    })
    model = result.derived.lifetime
    assert model is not None and not model.fitted
    assert model.reason.startswith("1 buyer, 1 of them bought more than once: the model "
                                   "needs at least 50 buyers and 20 repeat buyers")
    ann = result.derived.contacts["ann"]
    assert ann.lifetime is None and ann.stage == "repeat"  # the rule-based stage still stands
    assert "p_alive" not in ann.values()


def test_a_fit_is_kept_with_the_histories_it_was_made_from(
        cdnow: CheckResult, monkeypatch: pytest.MonkeyPatch) -> None:
    histories = [c.lifetime.history for c in cdnow.derived.contacts.values() if c.lifetime]
    settings = LifetimeSettings()
    cache: dict[str, str] = {}
    first = lifetime.fit(histories, settings, "USD", cache)
    assert first.fitted and len(cache) == 1

    def refuse(*args: object) -> None:
        raise AssertionError("fitted again")

    monkeypatch.setattr(lifetime, "fit_bgnbd", refuse)
    monkeypatch.setattr(lifetime, "fit_gamma_gamma", refuse)
    assert lifetime.fit(histories, settings, "USD", cache) == first
    changed = [*histories[:-1], History(5, 9.0, 12.0, 30.0, "USD")]
    with pytest.raises(AssertionError, match="fitted again"):
        lifetime.fit(changed, settings, "USD", cache)
    # A cache of another model version is not trusted.
    monkeypatch.setattr(lifetime, "MODEL_VERSION", lifetime.MODEL_VERSION + 1)
    with pytest.raises(AssertionError, match="fitted again"):
        lifetime.fit(histories, settings, "USD", cache)


def test_lifetime_settings_are_validated(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({
        "custsite.yaml": "lifetime:\n  time_unit: fortnights\n  at_risk_below: 1.5\n",
        "records/customers/ann.yaml": "name: Ann\n",
    })
    result = run("validate", root=root)
    assert result.exit_code == 1
    assert "custsite.yaml:2:14: error:" in result.output and "fortnights" in result.output
    assert "custsite.yaml:3:18: error: expected a share between 0 and 1" in result.output


def test_stats_report_the_model(cdnow_root: Path) -> None:
    result = run("stats", "--format", "json", root=cdnow_root)
    assert result.exit_code == 0, result.output
    model = json.loads(result.output)["lifetime"]
    assert model["fitted"] is True and model["buyers"] == 2357
    assert round(model["bgnbd"]["r"], 3) == 0.243
    text = run("stats", root=cdnow_root).output
    assert "lifetime model: fitted on 2357 buyers (946 repeat buyers)" in text


@pytest.fixture(scope="module")
def cdnow_site(cdnow_root: Path) -> Path:
    result = run("build", root=cdnow_root)
    assert result.exit_code == 0, result.output
    return cdnow_root / "site"


def test_pages_show_and_explain_the_figures(cdnow_site: Path) -> None:
    page = (cdnow_site / "customers/c-0001/index.html").read_text()
    assert "Bought 3 times in 39 weeks, last 8 weeks ago: 73% likely still active" in page
    assert "<dt>Still active</dt><dd>73% likely</dd>" in page
    assert "<dt>Lifetime value</dt><dd>36.73 USD over 12 months</dd>" in page
    model = (cdnow_site / "model/index.html").read_text()
    assert "Fitted on 2357 buyers" in model and ">0.2426<" in model and ">4.4136<" in model
    assert ">6.2496<" in model and "946 repeat buyers in USD" in model
    twin = json.loads((cdnow_site / "model/index.json").read_text())
    assert round(twin["bgnbd"]["b"], 3) == 2.426 and twin["spend_buyers"] == 946
    dashboard = (cdnow_site / "index.html").read_text()
    risk = dashboard.split('id="risk-h"')[1].split("</section>")[0]
    assert risk.count("<li>") == 10 and "likely active" in risk
    table = (cdnow_site / "customers/index.html").read_text()
    assert '<td class="num" data-sort="0.7266">73%</td>' in table


def test_exports_carry_the_figures(cdnow_root: Path, cdnow_site: Path, tmp_path: Path) -> None:
    import sqlite3

    header, first = (cdnow_site / "data/customers.csv").read_text().splitlines()[:2]
    columns = header.split(",")
    assert first.split(",")[columns.index("p_alive")] == "0.7266"
    assert first.split(",")[columns.index("clv")] == "36.73"
    db_path = tmp_path / "cdnow.sqlite"
    assert run("export", "--format", "sqlite", "-o", str(db_path), root=cdnow_root).exit_code == 0
    db = sqlite3.connect(db_path)
    try:
        row = db.execute("SELECT p_alive, expected_purchases, clv, typeof(p_alive) FROM contacts "
                         "WHERE id = 'c-0001'").fetchone()
    finally:
        db.close()
    assert row[0] == 0.7266 and row[2] == 36.73 and row[3] == "real"


def test_builds_keep_fits_in_the_cache_folder(cdnow_root: Path, cdnow_site: Path,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from custsite.build import build as build_site

    def build(root: Path, output: Path) -> None:
        """A build without the last build's memos (see memos), which hold the model too:
        only the fits kept here can spare fitting."""
        for memos in (root / ".custsite-cache").glob("memos-*"):
            memos.unlink()
        build_site(root, output=output)

    store = cdnow_root / ".custsite-cache/lifetime-fits.json"
    assert store.is_file()  # written by the site fixture's build
    real_fit = lifetime.fit_bgnbd

    def refuse(*args: object) -> None:
        raise AssertionError("fitted again")

    real_estimate = lifetime._estimate
    monkeypatch.setattr(lifetime, "fit_bgnbd", refuse)
    monkeypatch.setattr(lifetime, "_estimate", refuse)  # the estimates are kept too
    build(cdnow_root, output=tmp_path / "again")
    for page in ("model/index.json", "data/customers.csv", "customers/c-0001/index.html"):
        assert (tmp_path / "again" / page).read_bytes() == (cdnow_site / page).read_bytes()
    # Damaged or planted entries are ignored: the build fits and estimates again, and
    # repairs the cache.
    kept = json.loads(store.read_text())
    assert sum(k.startswith(lifetime.ESTIMATES) for k in kept) == 1 and len(kept) >= 2
    monkeypatch.setattr(lifetime, "_estimate", real_estimate)
    key = next(k for k in kept if k.startswith(lifetime.ESTIMATES))
    rows = json.loads(kept[key])
    planted = [json.dumps([["0.5", *rows[0][1:]], *rows[1:]]),  # a string for a number
               json.dumps([[*rows[0][:2], "NaN"], *rows[1:]]),  # a value that is none
               json.dumps([[*rows[0][:2], "1e999999"], *rows[1:]]),
               json.dumps([[*rows[0][:2], "36.7"], *rows[1:]]),
               json.dumps([["NaN", *rows[0][1:]], *rows[1:]]).replace('"NaN"', "NaN"),
               json.dumps([[1.5, *rows[0][1:]], *rows[1:]]),
               json.dumps([[*rows[0][:1], -1.0, rows[0][2]], *rows[1:]]),
               json.dumps(rows[1:]),  # one buyer short
               "{}", "not json"]
    for n, text in enumerate(planted):
        store.write_text(json.dumps({**kept, key: text}))
        build(cdnow_root, output=tmp_path / f"planted-{n}")
        assert (tmp_path / f"planted-{n}/data/customers.csv").read_bytes() == \
            (cdnow_site / "data/customers.csv").read_bytes(), text[:40]
    monkeypatch.setattr(lifetime, "fit_bgnbd", real_fit)
    fit_key = next(k for k in kept if not k.startswith(lifetime.ESTIMATES))
    fit = json.loads(kept[fit_key])
    for n, bad in enumerate([{**fit, "bgnbd": {**fit["bgnbd"], "r": "0.24"}},
                             {**fit, "bgnbd": {**fit["bgnbd"], "r": float("nan")}},
                             {**fit, "bgnbd": {"r": 1.0}}, {**fit, "spend_buyers": "all"},
                             {"bgnbd": None}, [1, 2]]):
        store.write_text(json.dumps({fit_key: json.dumps(bad)}))
        build(cdnow_root, output=tmp_path / f"refit-{n}")
        assert (tmp_path / f"refit-{n}/model/index.json").read_bytes() == \
            (cdnow_site / "model/index.json").read_bytes(), bad
    store.write_text("{not json")
    build(cdnow_root, output=tmp_path / "repaired")
    assert (tmp_path / "repaired/model/index.json").read_bytes() == \
        (cdnow_site / "model/index.json").read_bytes()
    assert len(json.loads(store.read_text())) == 2  # the fit, and the estimates made with it


def test_buyers_who_all_stop_alike_still_get_estimates() -> None:
    """When every buyer stops with the same probability, the likelihood has no peak but a
    ridge out to infinity (a and b grow together): the fit stops on it, and its mean dropout
    is still the true one."""
    import numpy as np

    rng = np.random.default_rng(3)
    histories = []
    for _ in range(3000):
        rate, age, times = rng.gamma(0.5, 1 / 4), rng.uniform(5, 52), [0.0]
        while (nxt := times[-1] + rng.exponential(1 / rate)) <= age:
            times.append(nxt)
            if rng.random() < 0.3:  # the same dropout for everyone
                break
        histories.append(History(len(times) - 1, times[-1], age, None, "EUR"))
    model = lifetime.fit(histories, LifetimeSettings(), "EUR")
    assert model.bgnbd is not None, model.reason
    a, b = model.bgnbd.a, model.bgnbd.b
    assert a + b > 50 and abs(a / (a + b) - 0.3) < 0.05
    assert all(0 <= e.p_alive <= 1 and e.expected_purchases >= 0
               for e in lifetime.estimate(model, histories, "EUR"))


def test_validate_leaves_out_only_what_no_problem_needs(tmp_path: Path) -> None:
    """`custsite validate` skips segments, the lifetime models, RFM scores and the personas
    of all but the leads with a declared status (check(problems_only=True)): its problems
    are the build's, here with personas that read p_alive and RFM scores, declared statuses
    and an organization."""
    import shutil

    root = tmp_path / "p"
    write_cdnow(root)
    (root / "personas").mkdir()
    (root / "personas/fading.md").write_text(
        "---\nname: Fading\nmatch: {not: {p_alive: {gte: 0.5}}}\n---\n")
    (root / "records/customers/lead.yaml").write_text("name: A lead\nstatus: lead\n")
    (root / "records/customers/c-00001.yaml").write_text("name: One\nstatus: prospect\n")
    full, lean = check(root), check(root, problems_only=True)
    assert lean.problems == full.problems
    assert any(p.code == "status-mismatch" for p in full.problems)
    assert full.derived.contacts["lead"].stage == "suspect"
    assert lean.derived.contacts["lead"].stage == "suspect"
    assert lean.derived.lifetime is None and full.derived.lifetime is not None
    assert all(c.rfm is None for c in lean.derived.contacts.values())
    (root / "personas/fading.md").unlink()
    (root / "personas/best.md").write_text(
        "---\nname: Best\nmatch: {rfm.r: {gte: 4}}\n---\n")
    lean, full = check(root, problems_only=True), check(root)
    assert lean.problems == full.problems and full.derived.persona_matches["best"] != ()
    for example in ("records", "personas", "custsite.yaml"):
        source = Path(__file__).parents[1] / example
        target = tmp_path / "example" / example
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    assert check(tmp_path / "example", problems_only=True).problems == \
        check(tmp_path / "example").problems


@pytest.mark.parametrize("model", ["bgnbd", "gamma_gamma"])
def test_the_likelihoods_gradients_are_their_derivatives(model: str) -> None:
    """The optimiser is given each likelihood's gradient: it must be the one finite
    differences find, at parameters near and far from any optimum, for buyers with and
    without repeat purchases."""
    import numpy as np
    from scipy.optimize import approx_fprime

    rng = np.random.default_rng(11)
    x = rng.integers(0, 12, 400).astype(float)
    T = rng.uniform(1, 60, 400)
    t_x = np.where(x > 0, T * rng.uniform(0.05, 1, 400), 0.0)
    spenders = x > 0
    m = rng.gamma(2.0, 30.0, int(spenders.sum()))
    if model == "bgnbd":
        points = [(0.24, 4.4, 0.79, 2.4), (2.0, 0.5, 0.1, 7.0), (0.05, 40.0, 3.0, 1.01)]

        def value(p: np.ndarray) -> tuple[float, np.ndarray]:
            return lifetime._bgnbd_log_likelihood(p, x, t_x, T)
    else:
        points = [(6.25, 3.74, 15.44), (0.5, 10.0, 300.0), (20.0, 1.2, 2.0)]

        def value(p: np.ndarray) -> tuple[float, np.ndarray]:
            return lifetime._gamma_gamma_log_likelihood(p, x[spenders], m)
    for point in points:
        params = np.array(point)
        total, gradient = value(params)
        numeric = approx_fprime(params, lambda p: value(p)[0], 1e-7 * params)
        assert np.isfinite(total)
        assert np.allclose(gradient, numeric, rtol=1e-4, atol=1e-3 * abs(total) / 1e4), \
            (point, gradient, numeric)


def _lifetimes(derived: Derived) -> tuple[object, dict[str, object]]:
    return derived.lifetime, {cid: c.lifetime for cid, c in derived.contacts.items()}


def test_a_helper_fits_what_this_process_would_fit(cdnow: CheckResult,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    portfolio, as_of = cdnow.derived.portfolio, cdnow.derived.as_of
    filled: list[int] = []
    take = fitting.Fitter.take

    def counted(self: fitting.Fitter, cache: dict[str, str]) -> None:
        before = len(cache)
        take(self, cache)
        filled.append(len(cache) - before)

    monkeypatch.setattr(fitting.Fitter, "take", counted)
    helper = fitting.Fitter.start()
    assert helper is not None
    helped = derive(portfolio, as_of, fitter=helper)
    assert filled == [2]  # the fit and the estimates, made by the helper
    assert not helper.proc.is_alive()  # done with
    alone = derive(portfolio, as_of)
    assert filled == [2] and helped.lifetime is not None and helped.lifetime.fitted
    assert _lifetimes(helped) == _lifetimes(alone)


def test_a_helper_that_fails_leaves_the_fit_to_this_process(
        cdnow: CheckResult, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fitting, "_help", lambda conn, ours: os._exit(3))  # dies before answering
    portfolio, as_of = cdnow.derived.portfolio, cdnow.derived.as_of
    assert _lifetimes(derive(portfolio, as_of, fitter=fitting.Fitter.start())) == \
        _lifetimes(cdnow.derived)


def test_a_helper_that_takes_too_long_is_stopped_and_the_fit_made_here(
        cdnow: CheckResult, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fitting, "_help", lambda conn, ours: time.sleep(60))
    monkeypatch.setattr(fitting, "PATIENCE_S", 0.5)
    helper = fitting.Fitter.start()
    assert helper is not None
    started = time.monotonic()
    derived = derive(cdnow.derived.portfolio, cdnow.derived.as_of, fitter=helper)
    assert time.monotonic() - started < 30
    assert _lifetimes(derived) == _lifetimes(cdnow.derived)
    assert not helper.proc.is_alive()


def test_this_process_imports_neither_numpy_nor_scipy_when_helped(cdnow_root: Path,
                                                                  tmp_path: Path) -> None:
    shutil.copytree(cdnow_root, tmp_path / "p", ignore=shutil.ignore_patterns(".custsite-cache",
                                                                             "site"))
    script = ("import sys\nfrom pathlib import Path\nfrom custsite.build import check\n"
              f"result = check(Path({str(tmp_path / 'p')!r}))\n"
              "assert result.derived.lifetime.fitted\n"
              "print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_no_helper_while_other_threads_run() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert fitting.Fitter.start() is None
    finally:
        stop.set()
        other.join()
    helper = fitting.Fitter.start()
    assert helper is not None
    helper.close()
    assert not helper.proc.is_alive()
