"""Property-based: whatever a record file holds, checking and building end with located
problems or a site — never an exception."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custsite.build import build, check
from custsite.errors import RULES, CustsiteError

FIELDS = ["name", "kind", "email", "phone", "organization", "role", "tags", "location",
          "age", "created", "do_not_contact", "fields", "status", "referred_by", "emial"]
SCALARS = st.one_of(
    st.sampled_from(["NO", "yes", "~", "0612345678", "+4412345678", "1:20", "02134",
                     "2025-02-30", "1e400", ".nan", "[]", "{}", "'", '"', "&a x", "*a",
                     "!!python/object:os.system", "person", "ann", "x@y.co", "true"]),
    st.text(max_size=30),
    st.integers(), st.floats(allow_nan=True),
)


@st.composite
def yaml_documents(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        key = draw(st.sampled_from(FIELDS))
        value = draw(SCALARS)
        indent = " " * draw(st.sampled_from([0, 0, 0, 1, 2, 4]))
        lines.append(f"{indent}{key}: {value}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n", "\t", "\x00"]))


def _run(customer: str | bytes, interaction: str | bytes, name: str = "x.yaml") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "records/customers").mkdir(parents=True)
        (root / "records/interactions").mkdir(parents=True)
        (root / "records/customers/ann.yaml").write_text("name: Ann\n")
        for path, data in ((f"records/customers/{name}", customer),
                           ("records/interactions/i.yaml", interaction)):
            target = root / path
            if isinstance(data, bytes):
                target.write_bytes(data)
            else:
                target.write_text(data, encoding="utf-8", errors="surrogatepass")
        result = check(root, as_of=dt.date(2026, 6, 1))
        for p in result.problems:
            assert p.code in RULES and p.location.path and p.location.line >= 0
        if not result.failed():
            try:
                build(root, as_of=dt.date(2026, 6, 1), output=root / "site")
            except CustsiteError as exc:  # a located, reported failure is fine
                assert "Traceback" not in str(exc)


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(yaml_documents(), yaml_documents())
def test_generated_yaml_never_crashes(customer: str, interaction: str) -> None:
    _run(customer, "customer: ann\ndate: 2026-01-01\nkind: call\n" + interaction)


@SETTINGS
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_random_bytes_never_crash(customer: bytes, interaction: bytes) -> None:
    _run(customer, interaction)


@SETTINGS
@given(st.lists(st.sampled_from(FIELDS), max_size=6), st.data())
def test_mutated_example_records_never_crash(drop: list[str], data: st.DataObject) -> None:
    from .conftest import REPO

    source = (REPO / "records/customers/marcus-bell.md").read_text()
    lines = source.split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "truncate", "duplicate", "replace"]))
        if action == "delete":
            del lines[i]
        elif action == "truncate":
            lines[i] = lines[i][: data.draw(st.integers(0, max(len(lines[i]), 0)))]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        else:
            lines[i] = f"{data.draw(st.sampled_from(FIELDS))}: {data.draw(SCALARS)}"
        if not lines:
            lines = [""]
    _run("\n".join(lines), "[]\n", name="x.md")
