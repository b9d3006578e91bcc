"""A local Jira and Zendesk for demos and end-to-end tests: in-memory state, real HTTP, faults.

Start it in-process with `sandbox.server.run_in_thread()` or as a process with
`tierdesk sandbox`. The real `jira` library talks to it through `server=<jira_url>`; zenpy
builds `https://{subdomain}.zendesk.com/api/v2/...` and is pointed at it, unmodified, with the
environment variables `ZENPY_FORCE_SCHEME=http` and `ZENPY_FORCE_NETLOC=127.0.0.1:<port>`
(read by zenpy.lib.api.BaseApi._build_url on every request; see `SandboxHandle.zenpy_env()`).

A vendor emulator, not a connector: nothing here imports `connectors/`. Each vendor is a package
split by resource (`jira/`, `zendesk/`); `story.py` and `demo.py` hold `tierdesk demo`'s story
and process stack. README.md has the layout.
"""
