"""Search languages of the sandbox: the JQL subset and the Zendesk search-query subset it answers.

JQL (https://support.atlassian.com/jira-software-cloud/docs/use-advanced-search-with-jira-query-language-jql/):
clauses `field op value` joined by AND / OR / NOT with parentheses, then `ORDER BY f [ASC|DESC]`.
Operators: = != ~ !~ in, not in, is [not] EMPTY|NULL, > >= < <=. Values: words, "quoted" or
'quoted' text, (lists), relative dates like -7d / -24h / -30m / -2w. Anything else is refused
with a message naming it, as Jira answers 400 to JQL it cannot parse.

Zendesk (https://support.zendesk.com/hc/en-us/articles/4408886879258): space-separated
`key:value`, `key<value`, `key>value` terms (a leading `-` negates), plain words match subject
and description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Values of one field of one item: empty for EMPTY, several for multi-valued fields (labels).
Values = Callable[[str], list[str] | None]


class QueryError(ValueError):
    """A query the sandbox cannot parse or evaluate; the message says what and where."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|!~|>=|<=|=|~|>|<|\(|\)|,)
      | (?P<word>[^\s=!~<>(),"']+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"Error in the JQL Query: unexpected character at position {pos}.")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            out.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        elif m.group("word") is not None:
            out.append(("word", m.group("word")))
    return out


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    values: tuple[str | None, ...]


@dataclass(frozen=True)
class Node:
    kind: str  # "and", "or", "not", "clause"
    children: tuple[Node, ...] = ()
    clause: Clause | None = None


@dataclass(frozen=True)
class Jql:
    """A parsed JQL query: a condition tree (None = everything) and ORDER BY keys."""

    where: Node | None
    order: tuple[tuple[str, bool], ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def word_is(self, *words: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok[0] == "word" and tok[1].lower() in words

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise QueryError("Error in the JQL Query: the query ends too early.")
        self.i += 1
        return tok

    def parse(self) -> Jql:
        where = None
        if self.peek() is not None and not self.word_is("order"):
            where = self.parse_or()
        order: list[tuple[str, bool]] = []
        if self.word_is("order"):
            self.take()
            if not self.word_is("by"):
                raise QueryError("Error in the JQL Query: expected 'by' after 'order'.")
            self.take()
            while True:
                name = self.take()[1].lower()
                desc = False
                if self.word_is("asc", "desc"):
                    desc = self.take()[1].lower() == "desc"
                order.append((name, desc))
                if self.peek() == ("op", ","):
                    self.take()
                    continue
                break
        if self.peek() is not None:
            raise QueryError(f"Error in the JQL Query: unexpected '{self.peek()[1]}'.")  # type: ignore[index]
        return Jql(where, tuple(order))

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.word_is("or"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Node("or", tuple(parts))

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while self.word_is("and"):
            self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else Node("and", tuple(parts))

    def parse_not(self) -> Node:
        if self.word_is("not"):
            self.take()
            return Node("not", (self.parse_not(),))
        if self.peek() == ("op", "("):
            self.take()
            node = self.parse_or()
            if self.take() != ("op", ")"):
                raise QueryError("Error in the JQL Query: expected ')'.")
            return node
        return self.parse_clause()

    def parse_clause(self) -> Node:
        kind, name = self.take()
        if kind == "op":
            raise QueryError(f"Error in the JQL Query: expected a field name before '{name}'.")
        tok = self.take()
        if tok[0] == "op" and tok[1] in ("=", "!=", "~", "!~", ">", ">=", "<", "<="):
            op = tok[1]
        elif tok[0] == "word" and tok[1].lower() == "in":
            op = "in"
        elif tok[0] == "word" and tok[1].lower() == "not" and self.word_is("in"):
            self.take()
            op = "not in"
        elif tok[0] == "word" and tok[1].lower() == "is":
            op = "is"
            if self.word_is("not"):
                self.take()
                op = "is not"
        else:
            raise QueryError(
                f"Error in the JQL Query: the operator '{tok[1]}' is not supported by the sandbox."
            )
        if op in ("in", "not in"):
            if self.take() != ("op", "("):
                raise QueryError(f"Error in the JQL Query: expected '(' after '{op}'.")
            values: list[str | None] = []
            while True:
                values.append(self.value())
                sep = self.take()
                if sep == ("op", ")"):
                    break
                if sep != ("op", ","):
                    raise QueryError("Error in the JQL Query: expected ',' or ')' in a list.")
            return Node("clause", clause=Clause(name.lower(), op, tuple(values)))
        return Node("clause", clause=Clause(name.lower(), op, (self.value(),)))

    def value(self) -> str | None:
        kind, text = self.take()
        if kind == "op":
            raise QueryError(f"Error in the JQL Query: expected a value, got '{text}'.")
        if kind == "word" and text.lower() in ("empty", "null"):
            return None
        return text


def parse_jql(text: str) -> Jql:
    """Parse JQL or raise QueryError with Jira-like wording."""
    return _Parser(text).parse()


_RELATIVE = re.compile(r"^([-+]?)(\d+)([wdhm])$")


def parse_when(text: str, *, now: datetime) -> datetime:
    """A JQL or Zendesk date: `2024-05-01`, `2024-05-01 10:30`, ISO 8601, or relative `-7d`."""
    m = _RELATIVE.match(text.strip())
    if m:
        unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[m.group(3)]
        delta = timedelta(**{unit: int(m.group(2))})
        return now - delta if m.group(1) == "-" else now + delta
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(
            f"Date value '{text}' for field is invalid. Valid formats include:"
            " 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period"
            " format e.g. '-5d', '4w 2d'."
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


DATE_FIELDS = frozenset({"created", "updated", "createddate", "updateddate"})


def evaluate(node: Node | None, values: Values, *, now: datetime) -> bool:
    """True when an item, seen through `values(field)`, matches the condition tree."""
    if node is None:
        return True
    if node.kind == "and":
        return all(evaluate(c, values, now=now) for c in node.children)
    if node.kind == "or":
        return any(evaluate(c, values, now=now) for c in node.children)
    if node.kind == "not":
        return not evaluate(node.children[0], values, now=now)
    assert node.clause is not None
    return _clause(node.clause, values, now=now)


def _clause(clause: Clause, values: Values, *, now: datetime) -> bool:
    have = values(clause.field)
    if have is None:
        raise QueryError(
            f"Field '{clause.field}' does not exist or you do not have permission to view it."
        )
    lowered = {v.lower() for v in have}
    wanted = [v.lower() for v in clause.values if v is not None]
    op = clause.op
    if op in ("is", "is not"):
        if clause.values != (None,):
            raise QueryError("Error in the JQL Query: 'is' takes only EMPTY or NULL.")
        return (not have) if op == "is" else bool(have)
    if op in ("=", "in"):
        return (None in clause.values and not have) or bool(lowered & set(wanted))
    if op in ("!=", "not in"):
        return bool(have) and not (lowered & set(wanted)) and None not in clause.values
    if op in ("~", "!~"):
        needle = (wanted or [""])[0].strip("*")
        found = any(needle in v for v in lowered)
        return found if op == "~" else not found
    # > >= < <=: dates on date fields, else numbers.
    value = clause.values[0]
    if value is None or not have:
        return False
    if clause.field in DATE_FIELDS:
        left: float = datetime.fromisoformat(have[0].replace("Z", "+00:00")).timestamp()
        right: float = parse_when(value, now=now).timestamp()
    else:
        try:
            left, right = float(have[0]), float(value)
        except ValueError as exc:
            raise QueryError(f"Field '{clause.field}' cannot be compared with '{op}'.") from exc
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


@dataclass(frozen=True)
class ZendeskTerm:
    """One term of a Zendesk search query."""

    key: str | None  # None: free text
    op: str  # ":", "<", ">"
    value: str
    negate: bool


_ZD_TERM = re.compile(r'^(-?)(?:(\w+)([:<>]))?("[^"]*"|\S+)$')


def parse_zendesk_query(text: str) -> list[ZendeskTerm]:
    """Split a Zendesk search query into terms; raises QueryError on an unreadable term."""
    terms: list[ZendeskTerm] = []
    for raw in re.findall(r'-?(?:\w+[:<>])?(?:"[^"]*"|\S+)', text):
        m = _ZD_TERM.match(raw)
        if not m:
            raise QueryError(f"cannot read the search term {raw!r}")
        neg, key, op, value = m.groups()
        terms.append(
            ZendeskTerm(key.lower() if key else None, op or ":", value.strip('"'), bool(neg))
        )
    return terms


#: Zendesk's status order, for status<solved and the like.
STATUS_ORDER = ("new", "open", "pending", "hold", "solved", "closed")


def zendesk_match(terms: Sequence[ZendeskTerm], values: Values, *, now: datetime) -> bool:
    """True when a ticket, seen through `values(field)`, matches every term."""
    for term in terms:
        if term.key == "type":
            continue
        if term.key is None:
            text = " ".join((values("subject") or []) + (values("description") or [])).lower()
            hit = term.value.lower() in text
        else:
            have = values(term.key)
            if have is None:
                raise QueryError(f"the sandbox does not search on {term.key!r}")
            if term.op == ":":
                hit = (term.value.lower() == "none" and not have) or term.value.lower() in {
                    v.lower() for v in have
                }
            elif term.key == "status":
                rank = STATUS_ORDER.index
                if term.value not in STATUS_ORDER or not have:
                    raise QueryError(f"unknown status {term.value!r} in the search query")
                hit = (
                    (rank(have[0]) < rank(term.value))
                    if term.op == "<"
                    else (rank(have[0]) > rank(term.value))
                )
            else:
                if not have:
                    hit = False
                else:
                    when = datetime.fromisoformat(have[0].replace("Z", "+00:00"))
                    bound = parse_when(term.value, now=now)
                    hit = when < bound if term.op == "<" else when > bound
        if hit == term.negate:
            return False
    return True
