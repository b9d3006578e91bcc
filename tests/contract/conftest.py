"""The contract tests use the sandbox tests' running sandbox."""

from tests.sandbox.conftest import sandbox  # noqa: F401  (a fixture)
