"""The Zendesk sandbox's account reads: users, organizations, groups, memberships, forms, fields."""

from __future__ import annotations

from sandbox.wire import Request, Response
from sandbox.zendesk.records import _not_found, one_page
from sandbox.zendesk.render import ZendeskRender


class ZendeskDirectory(ZendeskRender):
    """The account's users, organizations, groups, group memberships, forms and fields."""

    def me(self, request: Request) -> Response:
        return Response(200, {"user": self.user_json(int(request.actor or 0))})

    def get_user(self, request: Request) -> Response:
        try:
            return Response(200, {"user": self.user_json(int(request.params["id"]))})
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    def get_organization(self, request: Request) -> Response:
        try:
            oid = int(request.params["id"])
            return Response(200, {"organization": self.organization_json(oid)})
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    def list_groups(self, request: Request) -> Response:
        groups = [
            {
                "id": g.id,
                "name": g.name,
                "url": f"{self.base_url}/api/v2/groups/{g.id}.json",
                "deleted": False,
                "default": False,
            }
            for g in self.groups.values()
        ]
        return one_page("groups", groups)

    def group_memberships(self, request: Request) -> Response:
        """GET /api/v2/groups/{id}/memberships (Group Memberships API: "List Memberships")."""
        try:
            group = self.groups[int(request.params["id"])]
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc
        memberships = [
            {
                "id": group.id * 100000 + uid,
                "user_id": uid,
                "group_id": group.id,
                "default": False,
                "url": f"{self.base_url}/api/v2/group_memberships/{group.id * 100000 + uid}.json",
            }
            for uid in group.members
        ]
        return Response(
            200,
            {
                "group_memberships": memberships,
                "next_page": None,
                "previous_page": None,
                "count": len(memberships),
            },
        )

    def list_forms(self, request: Request) -> Response:
        """GET /api/v2/ticket_forms (Ticket Forms API)."""
        forms = [
            {
                "id": f.id,
                "name": f.name,
                "display_name": f.name,
                "active": f.active,
                "default": f.default,
                "end_user_visible": True,
                "ticket_field_ids": list(f.ticket_field_ids),
                "url": f"{self.base_url}/api/v2/ticket_forms/{f.id}.json",
            }
            for f in self.seed.ticket_forms
        ]
        return one_page("ticket_forms", forms)

    def list_organization_fields(self, request: Request) -> Response:
        """GET /api/v2/organization_fields (Organization Fields API)."""
        fields = [
            {
                "id": f.id,
                "key": f.key,
                "title": f.title,
                "type": f.type,
                "active": True,
                "url": f"{self.base_url}/api/v2/organization_fields/{f.id}.json",
            }
            for f in self.seed.organization_fields
        ]
        return one_page("organization_fields", fields)

    def list_fields(self, request: Request) -> Response:
        fields = [
            {
                "id": f.id,
                "title": f.title,
                "type": f.type,
                "active": f.active,  # Ticket Fields API: "Whether this field is available"
                "url": f"{self.base_url}/api/v2/ticket_fields/{f.id}.json",
            }
            for f in self.fields.values()
        ]
        return Response(
            200,
            {
                "ticket_fields": fields,
                "next_page": None,
                "previous_page": None,
                "count": len(fields),
            },
        )
