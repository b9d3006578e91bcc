"""tierdesk policy engine: tiers, plans, rules, documentation gates and targets, without I/O."""
