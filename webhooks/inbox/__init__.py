"""The durable inbox package: schema, migrations, records, database set-up, opening and the store.

    schema.py       the tables and the values stored in them (statuses, limits)
    migrations.py   versioned migrations and the runner applied on connect
    records.py      the record types (Delivery, StoredEvent, Claim, DecisionRecord, Depth, Pruned)
    database.py     URLs, engines (SQLite pragmas), InboxError and the SQLite fast insert
    opening.py      open_inbox: read-only commands never create a database (InboxUnavailable)
    reads.py        InboxReads: the read-only queries
    store.py        Inbox: receiving, claiming, completing, retrying, pausing, pruning
    sla_store.py    SlaStore (mixed into Inbox): SLA history marks, timers, fired keys, notices
"""
