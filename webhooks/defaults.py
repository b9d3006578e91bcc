"""Embedded defaults that make tierdesk run with no configuration (the example policy), and
reading a policy file with the files it names.

    policy = load_policy_file(Path("/etc/tierdesk/policy.yaml"))

`load_policy_file` is what every command that loads a policy file uses (`serve`, `worker`,
policy reload, `policy check`, `policy diff`, `decide`, `explain`, `sla list`): it reads the
policy and each iCalendar file its calendars name (`holidays.ics`), relative to the policy
file's directory, and reports a file that is missing, unreadable or not iCalendar as a problem
at the key that names it, with every other problem of the policy.
"""

from __future__ import annotations

from pathlib import Path

from tiering.policy import Policy, files_named, load_policy
from tiering.policy_problems import PolicyError, Problem
from tiering.policy_yaml import MAX_POLICY_BYTES

#: The largest ICS file read: a country's holidays for decades are a few hundred kB.
MAX_ICS_BYTES = 4 * 2**20

EXAMPLE_POLICY_SOURCE = "deploy/policy.example.yaml (embedded)"


def default_policy_text() -> str:
    """The text of the example policy shipped with the package (deploy/policy.example.yaml)."""
    return (Path(__file__).parent / "data" / "policy.example.yaml").read_text("utf-8")


def read_policy_file(path: Path) -> str:
    """The text of the policy file at `path`, reading at most `MAX_POLICY_BYTES` + 1 bytes: a
    file (or a device, or a FIFO) over the limit is refused before it fills the memory.

    Raises OSError and UnicodeDecodeError as reading would, and PolicyError when too large."""
    with path.open("rb") as handle:
        data = handle.read(MAX_POLICY_BYTES + 1)
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(str(path), [Problem(
            "", f"the file is over the {MAX_POLICY_BYTES}-byte limit of a policy")])
    return data.decode("utf-8")


def read_named_files(path: Path, text: str) -> tuple[dict[str, str], dict[str, str]]:
    """The text of each file the policy `text` (read from `path`) names, keyed as written, and
    why each that could not be read was not: (files, unreadable). Relative paths are relative
    to the directory of `path`."""
    files: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for name in files_named(text):
        where = path.parent / name
        try:
            with where.open("rb") as handle:
                data = handle.read(MAX_ICS_BYTES + 1)
        except FileNotFoundError:
            unreadable[name] = (f"no such file {where} (a relative path is read from the"
                                f" directory of {path})")
            continue
        except OSError as exc:
            unreadable[name] = f"cannot read {where}: {exc.strerror or exc}"
            continue
        if len(data) > MAX_ICS_BYTES:
            unreadable[name] = f"{where} is over the {MAX_ICS_BYTES}-byte limit of an ICS file"
            continue
        try:
            files[name] = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            unreadable[name] = f"{where} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
    return files, unreadable


def load_policy_file(path: Path, *, source: str | None = None) -> Policy:
    """The policy at `path` with the files it names (see the module docstring).

    Raises OSError and UnicodeDecodeError for the policy file itself, as `read_policy_file`
    does, and PolicyError listing every problem (the named files' included)."""
    text = read_policy_file(path)
    files, unreadable = read_named_files(path, text)
    return load_policy(text, source=source or str(path), files=files, unreadable=unreadable)
