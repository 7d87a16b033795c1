"""Time from saving one customer file to the rebuilt page being served by `custsite serve`.

    python benchmarks/serve.py [--contacts 10000] [--edits 7] [--work DIR]

Generates a portfolio (benchmarks/generate.py; 10 interactions per contact by default),
starts `custsite serve` in a subprocess, then edits one customer file at a time and measures,
for each edit, the wall time until the server answers with the new content. Prints the median
(with min and max), the server's own rebuild time, what it read and rendered, when the last
changed page was rendered (the lists and the dashboard are rendered after the site is
published, or on first request), and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return str(resp.read().decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/serve.json"))
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="custsite-serve-"))
    if not (work / "custsite.yaml").exists():
        generate(work, args.contacts)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "custsite", "-C", str(work), "serve",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        found = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
        if found:
            url = found.group(1)
            break
    cold = time.perf_counter() - start
    timings, server_side, finished, rendered = [], [], [], []
    run_id = int(time.time())
    try:
        for n in range(args.edits):
            cid = f"c-{(n * 997) % args.contacts:06d}"
            path = work / f"records/customers/{cid}.yaml"
            text = path.read_text()
            marker = f"Edited {run_id}-{n} "
            new = re.sub(r"^name: (Edited [\d-]+ )?", f"name: {marker}", text, count=1,
                         flags=re.M)
            t = time.perf_counter()
            path.write_text(new)
            page_url = url + f"customers/{cid}/index.html"
            while marker not in get(page_url):  # requests wait while a build runs
                time.sleep(0.002)
            timings.append(time.perf_counter() - t)
            status = json.loads(get(url + "__custsite/status"))
            while status["finished"] is None:  # the lists it appears in are still rendering
                time.sleep(0.01)
                status = json.loads(get(url + "__custsite/status"))
            server_side.append(status["seconds"])
            finished.append(status["finished"])
            rendered.append(len(status["rendered"]))
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    data = {
        "contacts": args.contacts, "edits": args.edits, "cold_start_s": round(cold, 2),
        "save_to_served_s": {"median": round(statistics.median(timings), 3),
                             "min": round(min(timings), 3), "max": round(max(timings), 3)},
        "server_rebuild_s": {"median": round(statistics.median(server_side), 3)},
        "every_page_ready_s": {"median": round(statistics.median(finished), 3)},
        "pages_rendered_per_edit": {"median": statistics.median(rendered)},
    }
    print(f"custsite serve on {args.contacts:,} contacts: cold start {cold:.1f} s")
    s = data["save_to_served_s"]
    print(f"save one customer → new page served: median {s['median']:.3f} s "
          f"(min {s['min']:.3f}, max {s['max']:.3f}) over {args.edits} edits")
    print(f"server's own rebuild: median {data['server_rebuild_s']['median']:.3f} s, "
          f"{data['pages_rendered_per_edit']['median']} pages rendered per edit, the last of "
          f"them (lists, dashboard, data files) after {data['every_page_ready_s']['median']:.3f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
