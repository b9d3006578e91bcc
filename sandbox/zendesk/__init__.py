"""The Zendesk half of the sandbox, one module per resource; `site.ZendeskSim` assembles them.

`seed` (the seed models), `records` (tickets, comments, webhooks, triggers, the error shapes,
authentication), `render` (Zendesk's JSON shapes), `directory` (users, organizations, groups,
memberships, forms, fields), `liquid` (the placeholder and `for` loop renderer), `search`,
`webhooks` (webhooks and event subscriptions), `triggers`, `tickets` (reads, updates with
safe_update, create, comments, uploads) and `site` (the routes table and the state view).
"""
