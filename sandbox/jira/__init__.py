"""The Jira half of the sandbox, one module per resource; `site.JiraSim` assembles them.

`seed` (the seed models), `records` (issues, comments, webhooks, the error shape, the clock),
`permissions`, `render` (Jira's JSON shapes), `directory` (serverInfo, users, projects, roles,
fields), `search` (JQL), `webhooks` (admin webhooks and the events sent), `comments`, `issues`
(edits, assignment, create, attachments), `contract` (request bodies against the OpenAPI
schemas) and `site` (the routes table and the state view).
"""
