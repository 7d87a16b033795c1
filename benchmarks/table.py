"""How the customers table behaves in a real browser with many rows.

    python benchmarks/table.py [--contacts 10000] [--work DIR] [--runs 5]

Generates a portfolio (benchmarks/generate.py), builds it, opens customers/index.html in
headless Chromium and times, inside the page: the script's start-up, toggling a facet, a
text search, sorting by a numeric and a text column, and clearing the filters. Prints a table
of medians (with min and max) and the longest main-thread task seen, and writes it as JSON.
Needs Debian's chromium and the `playwright` package (pip install -e '.[test]').
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate

from custsite.build import build

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Each action runs synchronously inside the page (the handlers are synchronous), so
# performance.now() around it measures the work including the DOM updates' layout.
ACTIONS = {
    "toggle stage facet": """() => {
        const box = document.querySelector('fieldset[data-facet=stage] input[value=prospect]');
        const t = performance.now(); box.click(); document.body.offsetHeight;
        return performance.now() - t; }""",
    "toggle a second facet": """() => {
        const box = document.querySelector('fieldset[data-facet=owner] input');
        const t = performance.now(); box.click(); document.body.offsetHeight;
        return performance.now() - t; }""",
    "sort by revenue": """() => {
        const b = document.querySelector('th[data-key=revenue] button');
        const t = performance.now(); b.click(); document.body.offsetHeight;
        return performance.now() - t; }""",
    "sort by name": """() => {
        const b = document.querySelector('th[data-key=name] button');
        const t = performance.now(); b.click(); document.body.offsetHeight;
        return performance.now() - t; }""",
    "clear filters": """() => {
        const b = document.getElementById('clear');
        const t = performance.now(); b.click(); document.body.offsetHeight;
        return performance.now() - t; }""",
}
SEARCH = """async () => {
    const q = document.getElementById('q'), status = document.getElementById('status');
    const before = status.textContent;
    const t = performance.now();
    q.value = 'ann lee'; q.dispatchEvent(new Event('input'));
    while (status.textContent === before) { await new Promise(r => setTimeout(r, 2)); }
    const elapsed = performance.now() - t;
    q.value = ''; q.dispatchEvent(new Event('input'));
    await new Promise(r => setTimeout(r, 300));
    return elapsed; }"""


def measure(site: Path, runs: int) -> dict[str, Any]:
    results: dict[str, list[float]] = {name: [] for name in ["page ready", *ACTIONS,
                                                             "search (incl. 120 ms debounce)"]}
    longest = 0.0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script("""window.__long = 0; new PerformanceObserver(l => {
                for (const e of l.getEntries()) window.__long = Math.max(window.__long, e.duration);
            }).observe({type: 'longtask', buffered: true});""")
            start = time.perf_counter()
            page.goto((site / "customers/index.html").as_uri())
            page.wait_for_selector("#facets:not([hidden])")
            results["page ready"].append((time.perf_counter() - start) * 1000)
            for name, script in ACTIONS.items():
                results[name].append(page.evaluate(script))
            results["search (incl. 120 ms debounce)"].append(page.evaluate(SEARCH))
            longest = max(longest, page.evaluate("window.__long"))
            page.close()
        browser.close()
    summary = {name: {"median_ms": round(statistics.median(v), 1), "min_ms": round(min(v), 1),
                      "max_ms": round(max(v), 1)} for name, v in results.items()}
    return {"timings": summary, "longest_task_ms": round(longest, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the generated portfolio (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/table.json"))
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="custsite-table-"))
    if not (work / "custsite.yaml").exists():
        generate(work, args.contacts, per_contact=2)
    result = build(work, output=work / "site")
    rows = len(result.check.derived.contacts)
    data = measure(work / "site", args.runs)
    size = (work / "site/customers/index.html").stat().st_size
    data.update({"rows": rows, "page_bytes": size, "runs": args.runs})
    print(f"customers table with {rows:,} rows ({size / 1e6:.1f} MB of HTML), "
          f"{args.runs} runs, Chromium headless")
    print(f"{'action':34} {'median':>9} {'min':>9} {'max':>9}")
    for name, t in data["timings"].items():
        print(f"{name:34} {t['median_ms']:>7.1f}ms {t['min_ms']:>7.1f}ms {t['max_ms']:>7.1f}ms")
    print(f"longest main-thread task: {data['longest_task_ms']:.0f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
