"""Problems found in a portfolio, the rule codes that name them, and the exceptions the CLI maps
to exit codes."""

from __future__ import annotations

import difflib
import struct
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

import click


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


class Location(NamedTuple):
    """A place in a source file; line and column are 1-based, 0 means "the whole file".

    A named tuple rather than a frozen dataclass: one is made for every YAML value, and
    tuples are several times cheaper to create.
    """

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col or 1}"
        return self.path


# One names tuple per shape of record ("date", "kind", "summary", ...), shared by every record
# written with the same fields in the same order.
_SHAPES: dict[tuple[str, ...], tuple[str, ...]] = {}


class Locs:
    """Where each field of one record was written, packed: the names (a tuple shared by all
    records of the same shape) and their lines and columns in one tuple of ints.

    A dict of Locations per record held a quarter of a portfolio's memory (three quarters of a
    million small objects at 10,000 contacts); a Location is made only when one is asked for,
    for a problem to report."""

    __slots__ = ("names", "path", "spots")

    def __init__(self, path: str, names: tuple[str, ...],
                 spots: Iterable[int] | bytes) -> None:
        self.path, self.names, self.spots = pack(path, names, spots)

    def extended(self, names: list[str], spots: list[int]) -> Locs:
        """These positions with more fields' (each with its line and column in `spots`)."""
        return Locs(self.path, (*self.names, *names), self.spots + _spots(spots))

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def get(self, name: str) -> Location | None:
        try:
            n = self.names.index(name)
        except ValueError:
            return None
        line, col = _SPOT.unpack_from(self.spots, _SPOT.size * n)
        return Location(self.path, line, col)

    def __getitem__(self, name: str) -> Location:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Locs) and (self.path, self.names, self.spots) == \
            (other.path, other.names, other.spots)

    def __hash__(self) -> int:
        return hash((self.path, self.names, self.spots))

    def __repr__(self) -> str:
        return f"Locs({dict((n, self[n]) for n in self.names)!r})"

    def __reduce__(self) -> tuple[type[Locs], Packed]:
        return (Locs, self.packed())

    def packed(self) -> Packed:
        return (self.path, self.names, self.spots)


# The positions as a record keeps them: a plain tuple of what a Locs holds, which `Locs(*it)`
# makes again when asked. A warm build unpickles 100,000 records' positions: as objects of
# their own (made by a call each) they took three times as long as tuples; the lines and
# columns are bytes (two unsigned 32-bit ints per field), one object rather than a tuple of a
# dozen ints: a fifth as long again.
Packed = tuple[str, tuple[str, ...], bytes]
_SPOT = struct.Struct("=II")
_UINT32 = next(code for code in "IL" if array(code).itemsize == 4)  # "I" where int is 32-bit


def _spots(spots: Iterable[int] | bytes) -> bytes:
    return spots if isinstance(spots, bytes) else array(_UINT32, spots).tobytes()


def pack(path: str, names: tuple[str, ...], spots: Iterable[int] | bytes) -> Packed:
    """The positions as a record keeps them (see Locs), names shared with every record of
    the same shape; `spots`: each field's line and column, one after the other."""
    return (path, _SHAPES.setdefault(names, names), _spots(spots))


NO_LOCS = Locs("", (), ())


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    summary: str
    rationale: str


# Every rule code custsite can report. Codes are stable: tools and CI configurations key on them.
# The README documents each one (a test keeps the two in step).
E, W = Severity.ERROR, Severity.WARNING
R = Rule

RULES: dict[str, Rule] = {
    r.code: r
    for r in [
        R("yaml-syntax", E, "the file is not valid YAML",
             "Nothing in a file that does not parse can be trusted, so the whole file is refused."),
        R("file-unreadable", E, "the file cannot be read as UTF-8 text",
             "Records are text; other encodings would be silently mis-decoded."),
        R("front-matter", E, "a Markdown record without a closed `---` front matter",
             "The fields of a `.md` record live in its front matter; without it there is "
             "no record."),
        R("duplicate-key", E, "a key appears twice in one mapping",
             "YAML loaders silently keep the last value, so the first one is lost without a word."),
        R("yaml-alias", E, "anchors and aliases expand beyond a safe size",
             "Aliases can blow a small file up exponentially (the 'billion laughs' attack)."),
        R("unknown-field", E, "a field that the record kind does not have",
             "A typo in a field name would otherwise make its value silently disappear."),
        R("missing-field", E, "a required field is absent or empty",
             "Records without their identifying fields cannot be shown or linked."),
        R("wrong-type", E, "a value of the wrong type (text, number, list, ...)",
             "Templates and rules must never see a value of a type they do not expect."),
        R("invalid-value", E, "a value outside the allowed set or range",
             "Enumerations (kinds, roles, stages) drive computations; an unknown one is a typo."),
        R("yaml-implicit-type", E,
             "an unquoted value that YAML 1.1 reads as another type (`NO`, `0612345678`, `1:20`)",
             "custsite keeps the text as written, but other YAML tools would read false, a "
             "number without its leading zero, or a base-60 number: quote it so every tool "
             "agrees."),
        R("invalid-date", E, "a date that is not an ISO date or not a real day",
             "2025-02-30 looks like a date but is none; the timeline and stages depend on dates."),
        R("invalid-email", E, "an e-mail address with invalid syntax",
             "Checked offline for syntax only; a bad address is a lost contact."),
        R("invalid-phone", E, "a phone number that cannot be parsed or is impossible",
             "Numbers are normalised to E.164 so they can be dialled and compared."),
        R("invalid-country", E, "not an ISO 3166-1 alpha-2 country code",
             "Country codes feed segments and maps; free text cannot be grouped."),
        R("invalid-currency", E, "not an ISO 4217 currency code",
             "Amounts without a real currency cannot be totalled."),
        R("invalid-url", E, "not an absolute http(s) URL",
             "Links on the site must lead somewhere and never run script (`javascript:`)."),
        R("invalid-id", E, "a file name that is not a safe record id",
             "Ids become folder names in the site: lowercase letters, digits, `-`, `_` only."),
        R("duplicate-id", E, "two records of one kind share an id",
             "An id must name exactly one record, or links and references are ambiguous."),
        R("duplicate-email", E, "two contacts share an e-mail address",
             "Usually the same person entered twice; merge them."),
        R("unknown-reference", E,
             "a reference to a record that does not exist (customer, organization, referred_by)",
             "A dangling link breaks the site and loses the interaction or the relation."),
        R("missing-file", E, "a file named by a record does not exist (persona photo)",
             "The site would show a broken image."),
        R("unsafe-path", E, "a path that leaves the portfolio (`../`, absolute)",
             "Records must never make the build read or write outside the portfolio."),
        R("hidden-file", W, "a record file whose name starts with a dot, which is not read",
             "Hidden files are tools' files; a record named like one would silently be missing "
             "from the site."),
        R("status-mismatch", W, "a declared `status` that differs from the computed stage",
             "Stages are computed from interactions; a stale hand-written status misleads "
             "readers."),
        R("future-interaction", W, "an interaction dated after `as_of`",
             "Future interactions are ignored by the stage engine until their date has come."),
        R("before-created", W, "an interaction dated before the contact's `created` date",
             "Either the date or `created` is wrong."),
        R("missing-amount", E, "a purchase without an amount",
             "Revenue, RFM and values would be silently understated."),
        R("mixed-currencies", E, "purchases of one contact or account in several currencies",
             "A total of amounts in different currencies is meaningless."),
        R("misplaced-field", W, "a field that has no meaning for this kind of record",
             "`amount` on a call or `role` without an organization are usually mistakes."),
        R("no-decision-maker", W,
             "an organization with open deals and no known decision-maker",
             "Deals stall when nobody who holds the budget is involved."),
        R("unknown-rule-field", E, "a segment or persona rule names an unknown field path",
             "A misspelt path would make the segment silently empty."),
        R("unknown-rule-operator", E, "a rule uses an unknown operator",
             "Only the documented operators exist; anything else is a typo."),
        R("template-error", E, "a page template that does not compile or fails to render",
             "A broken template would give a broken site; the build stops at the template line."),
        R("invalid-rule", E, "a rule whose value does not fit its field or operator",
             "Comparing a number with text or a bad regular expression would silently "
             "never match."),
    ]
}


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)`, or an empty string when nothing is close."""
    options = sorted(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        close = [c for c in options if c.lower() == word.lower()]
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class Problem:
    """One finding, located in a source file."""

    location: Location
    code: str
    message: str
    severity: Severity = field(default=Severity.ERROR)

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        return (loc.path, loc.line, loc.col, self.code, self.message)

    def format(self) -> str:
        return f"{self.location}: {self.severity.value}: {self.message} [{self.code}]"


def problem(location: Location, code: str, message: str) -> Problem:
    """A problem with the rule's default severity."""
    return Problem(location, code, message, RULES[code].severity)


class CustsiteError(click.ClickException):
    """A failure the CLI reports without a traceback; exit code 1."""

    exit_code = 1


class TemplateFailed(CustsiteError):
    """A template could not be compiled or rendered; carries the located problem."""

    def __init__(self, found: Problem) -> None:
        super().__init__(found.format())
        self.problem = found


class ValidationFailed(CustsiteError):
    """The portfolio has errors (or warnings under --strict)."""

    def __init__(self, problems: list[Problem]) -> None:
        errors = sum(p.severity is Severity.ERROR for p in problems)
        warnings = len(problems) - errors
        super().__init__(f"validation failed: {errors} error(s), {warnings} warning(s)")
        self.problems = problems
