"""The compiled tier policy (`Policy`, its rules and requirements) and `load_policy`.

`load_policy(text, source=...)` returns a `Policy` or raises `PolicyError` listing every problem,
each naming the file, the key path, what was expected and the line:

    policy.yaml: targets.L3.zendesk.group_id: expected an integer, got "three" (line 58)

Loading is: a bounded YAML read (tiering/policy_yaml.py), validation into the document models
(tiering/policy_models.py) with every problem, structural and of meaning, in one pass
(tiering/policy_validate.py, tiering/policy_checks.py), worded by tiering/policy_problems.py;
then compiling, here, with the indexes the engine needs. Reading the file is the caller's
business: this module does no I/O.

A policy is text an operator (or anyone who can write the file) controls, so loading is bounded
(issue 14): at most `MAX_POLICY_BYTES`, no YAML aliases (a 506-byte "billion laughs" file
expanded to 9 GB), at most `MAX_POLICY_DEPTH` levels of nesting, and a `RecursionError` becomes
an ordinary problem. Regexes compile with RE2 (tiering/patterns.py), which runs in linear time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick
import yaml

from tiering.patterns import TextPattern, compile_pattern
from tiering.policy_models import PolicyDoc
from tiering.policy_problems import PolicyError as PolicyError  # re-exported, a public name
from tiering.policy_problems import Problem, _line_for, _line_map, _path, _show
from tiering.policy_validate import _validate
from tiering.policy_yaml import _TOO_DEEP, MAX_POLICY_BYTES, _parse, _Refused
from tiering.sla_policy import compile_sla


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    name: str
    tier: str | None
    route: str | None
    suggest: tuple[str, ...]
    text_any: tuple[str, ...] | None
    text_all: tuple[str, ...] | None
    text_none: tuple[str, ...] | None
    text_regex: TextPattern | None
    whole_words: bool
    priority_in: frozenset[str] | None
    labels_any: frozenset[str] | None
    plan_in: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class CompiledRequirement:
    tier: str
    field: str
    label: str
    min_length: int | None
    pattern: TextPattern | None
    one_of: frozenset[str] | None
    attachment: bool
    #: Required only when this field has a value (one of `when_one_of`, lower-cased, if set).
    when_field: str | None = None
    when_one_of: frozenset[str] | None = None


class Policy:
    """A validated policy, with the indexes the engine needs precomputed."""

    def __init__(
        self, doc: PolicyDoc, *, source: str, digest: str, files: Mapping[str, str] | None = None
    ) -> None:
        self.doc = doc
        #: Calendars (the built-in 24x7 included) and SLA targets.
        self.sla = compile_sla(doc.calendars, doc.sla, files or {})
        self.source = source
        #: sha256 of the policy text: recorded with every decision.
        self.digest = digest
        self.tiers: tuple[str, ...] = tuple(doc.tiers)
        self.rank: dict[str, int] = {t: i for i, t in enumerate(doc.tiers)}
        self.tier_label: dict[str, str] = {t: f"tier-{t.lower()}" for t in doc.tiers}
        self.request_label: dict[str, str] = {t: f"escalate-{t.lower()}" for t in doc.tiers}
        self.tier_by_label = {v: k for k, v in self.tier_label.items()}
        self.tier_by_request = {v: k for k, v in self.request_label.items()}
        self.default_tier = doc.default_tier
        unverified = doc.entitlement.unverified_max_tier
        if unverified is None:
            unverified = "L1" if "L1" in self.rank else doc.tiers[0]
        self.unverified_max_tier: str = unverified
        self.plans = doc.plans
        self.default_plan = doc.default_plan
        by_org: dict[str, str] = {}
        by_domain: dict[str, str] = {}
        by_email: dict[str, str] = {}
        self._customer_rank: dict[tuple[str, str], int] = {}
        for i, c in enumerate(doc.customers):
            m = c.match
            for kind, value, index in (
                ("organization", m.organization, by_org),
                ("email_domain", m.email_domain, by_domain),
                ("email", m.email, by_email),
            ):
                if value:
                    k = value.strip().lower().lstrip("@") if kind == "email_domain" else (
                        value.strip().lower()
                    )
                    if k not in index:
                        index[k] = c.plan
                        self._customer_rank[(kind, k)] = i
        self._by_org = by_org
        self._by_domain = by_domain
        self._by_email = by_email
        self.rules: tuple[CompiledRule, ...] = tuple(
            CompiledRule(
                index=i,
                name=r.name,
                tier=r.tier,
                route=r.route,
                suggest=tuple(r.suggest),
                text_any=_lower(r.when.text_any),
                text_all=_lower(r.when.text_all),
                text_none=_lower(r.when.text_none),
                text_regex=compile_pattern(r.when.text_regex, ignore_case=True)
                if r.when.text_regex
                else None,
                whole_words=r.when.whole_words,
                priority_in=_lowset(r.when.priority_in),
                labels_any=_lowset(r.when.labels_any),
                plan_in=frozenset(r.when.plan_in) if r.when.plan_in is not None else None,
            )
            for i, r in enumerate(doc.rules)
        )
        #: Every literal text term of every rule, found in one pass over a ticket's text by an
        #: Aho-Corasick automaton (pyahocorasick) instead of one substring scan per term.
        terms = sorted({
            t for r in self.rules for t in (*(r.text_any or ()), *(r.text_all or ()),
                                            *(r.text_none or ()))
        })
        #: Rules that need one of their text_any terms present, by term; rules without text_any
        #: are candidates for every ticket. Only candidates are evaluated, in policy order.
        by_term: dict[str, set[int]] = {}
        for r in self.rules:
            for t in r.text_any or ():
                by_term.setdefault(t, set()).add(r.index)
        self._rules_by_term = {t: frozenset(ix) for t, ix in by_term.items()}
        self._always = frozenset(r.index for r in self.rules if r.text_any is None)
        self._automaton: Any = None
        if terms:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
            for term in terms:
                automaton.add_word(term, term)
            automaton.make_automaton()
            self._automaton = automaton
        #: For each tier, every requirement of that tier and of each tier below it, in order.
        cumulative: dict[str, tuple[CompiledRequirement, ...]] = {}
        acc: list[CompiledRequirement] = []
        for t in doc.tiers:
            for req in doc.documentation.get(t, ()):
                acc.append(
                    CompiledRequirement(
                        tier=t,
                        field=req.field,
                        label=req.label,
                        min_length=req.min_length,
                        pattern=compile_pattern(req.pattern) if req.pattern else None,
                        one_of=_lowset(req.one_of),
                        attachment=req.attachment,
                        when_field=req.when.field if req.when else None,
                        when_one_of=_lowset(req.when.one_of) if req.when else None,
                    )
                )
            cumulative[t] = tuple(acc)
        self.requirements = cumulative
        self.fields = doc.fields
        self.targets = doc.targets
        self.route_label: dict[str, str] = {
            r.route: f"tier-route-{r.route.lower()}" for r in doc.rules if r.route
        }
        self.route_by_label = {v: k for k, v in self.route_label.items()}
        #: Routes an agent may ask for by label (`rules[].by_label`): route -> `route-<name>`,
        #: in the policy's rule order.
        self.route_request_label: dict[str, str] = {
            r.route: f"route-{r.route.lower()}" for r in doc.rules if r.route and r.by_label
        }
        #: Each target's extra labels (`targets.<key>.labels`), lower-cased: a ticket carries
        #: them while in that tier or route.
        self.target_labels: dict[str, frozenset[str]] = {
            name: frozenset(label.lower() for label in t.labels)
            for name, t in doc.targets.items() if t.labels
        }
        fixed = {"tier-docs-missing", "tier-entitlement-exceeded", "tier-unverified"}
        self._managed = frozenset(
            [*self.tier_label.values(), *self.request_label.values(),
             *self.route_label.values(), *self.route_request_label.values(), *fixed,
             *(label for labels in self.target_labels.values() for label in labels)]
        )

    def terms_in(self, text: str) -> tuple[frozenset[str], frozenset[str]]:
        """The rule terms that occur in `text` (already lower-cased): anywhere, and as whole
        words (not preceded or followed by a letter or digit)."""
        if self._automaton is None:
            return frozenset(), frozenset()
        anywhere: set[str] = set()
        words: set[str] = set()
        last = len(text) - 1
        for end, term in self._automaton.iter(text):
            anywhere.add(term)
            if term in words:
                continue
            start = end - len(term) + 1
            if (start == 0 or not text[start - 1].isalnum()) and (
                end == last or not text[end + 1].isalnum()
            ):
                words.add(term)
        return frozenset(anywhere), frozenset(words)

    def candidate_rules(self, terms: frozenset[str]) -> list[CompiledRule]:
        """The rules that can match a text containing exactly `terms`, in policy order."""
        indices = set(self._always)
        for term in terms:
            hit = self._rules_by_term.get(term)
            if hit:
                indices.update(hit)
        return [self.rules[i] for i in sorted(indices)]

    def plan_for(self, organization: str | None, email: str | None) -> tuple[str | None, str]:
        """The customer's plan from `customers` (first match wins) and how it was found."""
        hits: list[tuple[int, str, str]] = []
        if organization:
            k = organization.strip().lower()
            if k in self._by_org:
                hits.append((self._customer_rank[("organization", k)], self._by_org[k],
                             f'organization "{organization}"'))
        if email:
            e = email.strip().lower()
            if e in self._by_email:
                hits.append((self._customer_rank[("email", e)], self._by_email[e], f"email {e}"))
            if "@" in e:
                d = e.rsplit("@", 1)[1]
                if d in self._by_domain:
                    hits.append((self._customer_rank[("email_domain", d)], self._by_domain[d],
                                 f"email domain {d}"))
        if hits:
            _, plan, how = min(hits)
            return plan, how
        return None, ""

    @property
    def jira_fields(self) -> dict[str, str]:
        """Policy field name -> Jira field id, for the fields mapped for Jira."""
        return {n: m.jira for n, m in self.fields.items() if m.jira}

    @property
    def zendesk_fields(self) -> dict[str, int]:
        """Policy field name -> Zendesk ticket field id, for the fields mapped for Zendesk."""
        return {n: m.zendesk for n, m in self.fields.items() if m.zendesk is not None}

    @property
    def managed_labels(self) -> frozenset[str]:
        """Every label or tag the engine may add or remove (what a connector watches)."""
        return self._managed

    def summary(self) -> str:
        d = self.doc
        return (
            f"{self.source}: OK: {len(d.tiers)} tiers ({', '.join(d.tiers)}), {len(d.plans)} plans,"
            f" {len(d.customers)} customers, {len(d.rules)} rules,"
            f" {sum(len(v) for v in d.documentation.values())} documentation requirements,"
            f" {len(d.targets)} targets"
        ) + self.sla.summary()


def _lower(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(v.lower() for v in values)


def _lowset(values: Sequence[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(v.lower() for v in values)



def files_named(text: str) -> tuple[str, ...]:
    """The files a policy text names, as written (calendar ICS holidays:
    `calendars.<name>.holidays.ics`), for the caller to read and pass to `load_policy`.

    Reads the text as `load_policy` does (bounded); a text that cannot be read names no file
    (`load_policy` then says what is wrong with it). Values that are not text are left to
    validation."""
    try:
        _, data = _parse(text)
    except (yaml.YAMLError, RecursionError):
        return ()
    calendars = data.get("calendars") if isinstance(data, dict) else None
    if not isinstance(calendars, dict):
        return ()
    out: list[str] = []
    for spec in calendars.values():
        holidays = spec.get("holidays") if isinstance(spec, dict) else None
        ics = holidays.get("ics") if isinstance(holidays, dict) else None
        if isinstance(ics, str) and ics not in out:
            out.append(ics)
    return tuple(out)


def load_policy(
    text: str,
    *,
    source: str = "policy.yaml",
    files: Mapping[str, str] | None = None,
    unreadable: Mapping[str, str] | None = None,
) -> Policy:
    """Parse, validate and compile a policy; raise `PolicyError` listing every problem.

    `files` holds the text of each file the policy names (calendar ICS holidays, see
    `files_named`), keyed by the path as written in the policy; the caller reads them (relative
    to the policy file). `unreadable` maps a named file the caller could not read to the reason,
    which becomes a problem at the key that names it."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_POLICY_BYTES:
        raise PolicyError(source, [Problem(
            "", f"the file is {size} bytes, over the {MAX_POLICY_BYTES}-byte limit of a policy"
                " (split long customer lists across fewer, broader matches)")])
    try:
        return _load(text, source, files, unreadable)
    except RecursionError:
        raise PolicyError(source, [Problem(
            "", "nested too deeply to read; a policy needs about 6 levels of nesting")]) from None


def _load(
    text: str, source: str, files: Mapping[str, str] | None,
    unreadable: Mapping[str, str] | None = None,
) -> Policy:
    try:
        node, data = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:  # libyaml's own bound (1000) met first
            problem = _TOO_DEEP
        message = (problem if isinstance(exc, _Refused) or problem == _TOO_DEEP
                   else f"not valid YAML: {problem}")
        raise PolicyError(source, [Problem("", message, line)]) from exc
    lines = _line_map(node)
    if not isinstance(data, dict):
        raise PolicyError(
            source, [Problem("", f"expected a mapping of policy keys, got {_show(data)}", 1)]
        )
    doc, found = _validate(data, files or {}, unreadable)
    if found:
        problems = [Problem(_path(loc), message, _line_for(lines, loc)) for loc, message in found]
        # In the order of the file; problems of the whole file (no line) first.
        problems.sort(key=lambda p: p.line or 0)
        raise PolicyError(source, problems)
    assert doc is not None
    return Policy(doc, source=source, digest=policy_digest(text, files), files=files)


def policy_digest(text: str, files: Mapping[str, str] | None = None) -> str:
    """The sha256 of a policy text and the files it names: `Policy.digest`."""
    sha = hashlib.sha256(text.encode("utf-8"))
    for name in sorted(files or {}):
        sha.update(b"\0" + name.encode("utf-8") + b"\0" + (files or {})[name].encode("utf-8"))
    return sha.hexdigest()
