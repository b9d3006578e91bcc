"""The Zendesk sandbox's JSON: users, organizations, tickets and comments in Zendesk's shapes."""

from __future__ import annotations

from typing import Any

from sandbox.zendesk.records import VIA_WEB, Comment, Ticket, ZendeskAccountBase, zd_time


class ZendeskRender(ZendeskAccountBase):
    """Records rendered in Zendesk's response shapes."""

    def user_json(self, uid: int) -> dict[str, Any]:
        u = self.users[uid]
        return {
            "id": u.id,
            "url": f"{self.base_url}/api/v2/users/{u.id}.json",
            "name": u.name,
            "email": u.email,
            "role": u.role,
            "organization_id": u.organization_id,
            "active": True,
            "verified": True,
            "time_zone": "UTC",
            "locale": "en-US",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "tags": [],
            "user_fields": {},
            "suspended": False,
        }

    def organization_json(self, oid: int) -> dict[str, Any]:
        o = self.organizations[oid]
        return {
            "id": o.id,
            "url": f"{self.base_url}/api/v2/organizations/{o.id}.json",
            "name": o.name,
            "domain_names": o.domain_names,
            "details": "",
            "notes": "",
            "group_id": None,
            "shared_tickets": False,
            "shared_comments": False,
            "tags": [],
            "organization_fields": dict(o.organization_fields),
            "external_id": None,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }

    def ticket_json(self, t: Ticket) -> dict[str, Any]:
        custom = [{"id": fid, "value": t.custom.get(fid)} for fid in self.fields]
        return {
            "url": f"{self.base_url}/api/v2/tickets/{t.id}.json",
            "id": t.id,
            "external_id": None,
            "via": {
                "channel": "web" if t.via_id == VIA_WEB else "api",
                "source": {"from": {}, "to": {}, "rel": None},
            },
            "created_at": zd_time(t.created_at),
            "updated_at": zd_time(t.updated_at),
            "generated_timestamp": int(t.updated_at.timestamp()),
            "type": t.type,
            "subject": t.subject,
            "raw_subject": t.subject,
            "description": t.description,
            "priority": t.priority,
            "status": t.status,
            "recipient": None,
            "requester_id": t.requester_id,
            "submitter_id": t.submitter_id,
            "assignee_id": t.assignee_id,
            "organization_id": t.organization_id,
            "group_id": t.group_id,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": any(c.public for c in t.comments) or not t.comments,
            "due_at": None,
            "tags": list(t.tags),
            "custom_fields": custom,
            "fields": custom,
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "custom_status_id": 1,
            "followup_ids": [],
            "brand_id": 1,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": False,
        }

    def comment_json(self, c: Comment) -> dict[str, Any]:
        return {
            "id": c.id,
            "type": "Comment",
            "author_id": c.author_id,
            "body": c.body,
            "html_body": f'<div class="zd-comment"><p>{c.body}</p></div>',
            "plain_body": c.body,
            "public": c.public,
            "attachments": list(c.attachments),
            "audit_id": c.audit_id,
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": zd_time(c.created_at),
            "metadata": {"system": {}, "custom": {}},
        }
