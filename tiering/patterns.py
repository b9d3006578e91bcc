"""Policy regular expressions on a linear-time engine (RE2), and the cap on the text they see.

Customers write the ticket text, and a backtracking engine (Python's `re`) can take exponential
time on a pattern such as `(a+)+$` while holding the GIL, which froze the receiver along with the
worker (issue 14). Policy patterns (`rules[].when.text_regex`, `documentation.*[].pattern`)
therefore compile with RE2 through `google-re2`, whose matching time is linear in the text:
https://github.com/google/re2/wiki/WhyRE2 . RE2 refuses what it cannot run in linear time
(backreferences `\\1`, lookaround `(?=` `(?!` `(?<=` `(?<!`, possessive `*+`, repetition counts
over 1000) and `policy check` reports its reason with the key path
(syntax: https://github.com/google/re2/wiki/Syntax).

Differences from Python's `re` a policy author may meet: `\\d`, `\\w`, `\\s` and `\\b` are
ASCII-only in RE2 (use `\\pL`, `\\pN` for Unicode letters and digits).

The text any pattern sees is capped at `MAX_MATCH_CHARS` characters (the first ones, where the
subject is): the engine's cost per ticket is then bounded whatever a customer pastes.
"""

from __future__ import annotations

from typing import Protocol

import re2

#: Characters of a ticket's text (subject, newline, description) that rules match, and of a
#: documentation field's value that its pattern sees. Documented in the admin guide.
MAX_MATCH_CHARS = 64 * 1024

#: Memory RE2 may use for one compiled pattern (its default is 8 MiB); a pattern whose program
#: is bigger is refused ("pattern too large"), so a policy cannot make the worker grow.
MAX_PATTERN_MEMORY = 8 << 20


#: RE2's reasons for refusing something Python's `re` would run (possibly in exponential time).
_UNSUPPORTED = ("invalid perl operator", "invalid escape sequence", "bad repetition operator",
                "invalid repetition size")


class TextPattern(Protocol):
    """What the engine uses of a compiled pattern."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message is RE2's reason."""


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> TextPattern:
    """Compile `pattern` with RE2; raise `PatternError` with RE2's reason if it refuses it."""
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.max_mem = MAX_PATTERN_MEMORY
    try:
        compiled: TextPattern = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        text = str(reason)
        if text.startswith(_UNSUPPORTED):
            text += (" (policy patterns run on RE2, in linear time: no backreferences,"
                     " lookaround, possessive repeats or counts over 1000)")
        raise PatternError(text) from None
    return compiled


def capped(text: str) -> str:
    """The part of `text` that patterns and terms are matched against."""
    return text if len(text) <= MAX_MATCH_CHARS else text[:MAX_MATCH_CHARS]
