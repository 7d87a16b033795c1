"""Write a deterministic synthetic portfolio for benchmarks.

    python benchmarks/generate.py OUT_DIR [--contacts 10000] [--interactions-per-contact 10]

N contacts (a third of them in organizations), about 10 interactions each with 2–4 sentence
Markdown notes (all different), 8 personas and 10 declared segments. The same arguments always
give the same files, so figures from different runs compare.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

AS_OF = dt.date(2026, 6, 1)
FIRST = ["Ann", "Bob", "Cleo", "Dan", "Eva", "Finn", "Gina", "Hugo", "Ida", "Jon", "Kim", "Leo",
         "Mia", "Ned", "Ola", "Pia", "Quin", "Rui", "Sam", "Tea", "Uma", "Vic", "Wes", "Yan"]
LAST = ["Lee", "Stone", "Ray", "Moss", "Hall", "King", "Diaz", "Park", "Wu", "Olsen", "Price",
        "Green", "Baker", "Cole", "Marsh", "Bell", "Reyes", "Ross", "Clark", "Adams"]
SECTORS = ["roofing", "retail", "education", "logistics", "finance", "hospitality", "health",
           "agriculture"]
REGIONS = ["IL", "OH", "MI", "WI", "IN", "MN", "IA", "MO"]
TAGS = ["vip", "homeowner", "solar-interest", "newsletter", "referral", "event", "renter"]
SENTENCES = [
    "Discussed the **roof inspection** and the options for next spring.",
    "They asked for a written quote with two alternatives.",
    "Budget is approved for the second half of the year.",
    "Sent the brochure and a link to the [warranty terms](https://example.com/warranty).",
    "The facilities manager wants to see references from nearby customers.",
    "Follow up after the board meeting; the decision is expected within a month.",
    "Very happy with the crew, asked about gutter cleaning too.",
    "Prefers to be called in the morning, before 10.",
]
KINDS = ["email", "email", "call", "message", "meeting", "note", "purchase", "purchase",
         "feedback", "quote", "demo", "reminder"]


def _notes(rnd: random.Random, ref: str) -> str:
    """2-4 sentences, the last naming the interaction: no two notes are the same, as in a real
    portfolio (a cache of rendered notes must not flatter the figures)."""
    return " ".join([*rnd.sample(SENTENCES, rnd.randint(1, 3)), f"Logged as {ref}."])


def generate(out: Path, contacts: int = 10_000, per_contact: int = 10, seed: int = 1) -> int:
    """Write the portfolio into `out`; returns the number of interactions written."""
    rnd = random.Random(seed)
    for sub in ("records/customers", "records/organizations", "records/interactions",
                "personas"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    orgs = max(contacts // 9, 1)
    for n in range(orgs):
        (out / f"records/organizations/org-{n:05d}.yaml").write_text(
            f"name: Company {n}\nsector: {SECTORS[n % len(SECTORS)]}\nsize: {10 + n % 400}\n"
            f"website: https://company{n}.example.com\n", encoding="utf-8")
    total = 0
    for n in range(contacts):
        cid = f"c-{n:06d}"
        name = f"{FIRST[n % len(FIRST)]} {LAST[(n // len(FIRST)) % len(LAST)]} {n}"
        lines = [f"name: {name}", f"email: {cid}@example.com",
                 f"owner: {['Dana', 'Luis', 'Sam', 'Priya'][n % 4]}",
                 f"sector: {SECTORS[rnd.randrange(len(SECTORS))]}",
                 f"location: {{city: Town {n % 97}, region: {REGIONS[n % len(REGIONS)]}, "
                 "country: US}",
                 f"age: {20 + n % 60}",
                 f"tags: [{', '.join(rnd.sample(TAGS, rnd.randint(0, 3)))}]"]
        if n % 3 == 0:
            lines += [f"organization: org-{rnd.randrange(orgs):05d}",
                      f"role: {['decision-maker', 'ally', 'internal', 'bystander'][n % 4]}"]
        if n % 50 == 7:
            lines.append(f"referred_by: c-{rnd.randrange(max(n, 1)):06d}" if n else "")
        (out / f"records/customers/{cid}.yaml").write_text(
            "\n".join(line for line in lines if line) + "\n", encoding="utf-8")
        items = []
        count = rnd.randint(max(per_contact - 4, 0), per_contact + 4)
        offsets = [k * rnd.randint(5, 60) for k in range(count)]
        # Every interaction on or before AS_OF: the portfolio has `per_contact` on average.
        start = AS_OF - dt.timedelta(days=max(offsets, default=0) + rnd.randint(0, 900))
        for k, offset in enumerate(offsets):
            day = start + dt.timedelta(days=offset)
            kind = KINDS[rnd.randrange(len(KINDS))]
            item = [f"- customer: {cid}", f"  date: {day.isoformat()}", f"  kind: {kind}",
                    f"  summary: {kind.capitalize()} number {k + 1}"]
            if kind in ("email", "call", "message"):
                item.append(f"  direction: {'in' if rnd.random() < 0.3 else 'out'}")
            if kind == "purchase":
                item.append(f"  amount: {rnd.choice([180, 250, 390, 1850, 2400, 18500])}")
                if rnd.random() < 0.1:
                    item.append("  recurring: yearly")
            if kind == "feedback":
                item.append(f"  rating: {rnd.randint(1, 5)}")
            if kind == "reminder":
                item.append(f"  due: {(day + dt.timedelta(days=14)).isoformat()}")
            item.append(f"  notes: \"{_notes(rnd, f'{cid}-{k + 1}')}\"")
            items.append("\n".join(item))
            total += 1
        (out / f"records/interactions/{cid}.yaml").write_text(
            "\n".join(items) + "\n" if items else "[]\n", encoding="utf-8")
    for p in range(8):
        (out / f"personas/persona-{p}.md").write_text(
            f"---\nname: Persona {p}\nheadline: Benchmark persona {p}\n"
            f"match:\n  sector: {SECTORS[p]}\n  age: {{gte: {20 + p * 5}}}\n---\n"
            f"{' '.join(SENTENCES[:3])}\n", encoding="utf-8")
    segments = ["segments:"]
    for s in range(10):
        segments += [f"  seg-{s}:", f"    title: Segment {s}", "    where:",
                     f"      location.region: {REGIONS[s % len(REGIONS)]}",
                     f"      purchases: {{gte: {s % 3}}}"]
    (out / "custsite.yaml").write_text(
        f"title: Benchmark portfolio\ncurrency: USD\nas_of: {AS_OF.isoformat()}\n"
        + "\n".join(segments) + "\n", encoding="utf-8")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--interactions-per-contact", type=int, default=10)
    args = parser.parse_args()
    n = generate(args.out, args.contacts, args.interactions_per_contact)
    print(f"wrote {args.contacts} contacts and {n} interactions into {args.out}")


if __name__ == "__main__":
    main()
