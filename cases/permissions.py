"""Object-permission codenames (on Case, and on Handoff for prosecutors) and what each team role
grants, in one place."""

from __future__ import annotations

from enum import StrEnum

from cases.models import TeamRole


class CasePerm(StrEnum):
    VIEW = "view_case"
    CHANGE = "change_case"
    MANAGE_TEAM = "manage_team"


class HandoffPerm(StrEnum):
    """Held only by the addressed prosecutor (HandoffUserObjectPermission), granted when a
    supervisor approves the handoff and revoked when it is re-addressed."""

    VIEW = "view_handoff"


TEAM_ROLE_PERMS: dict[str, tuple[CasePerm, ...]] = {
    TeamRole.VIEWER: (CasePerm.VIEW,),
    TeamRole.INVESTIGATOR: (CasePerm.VIEW, CasePerm.CHANGE),
    TeamRole.LEAD: (CasePerm.VIEW, CasePerm.CHANGE, CasePerm.MANAGE_TEAM),
}

SUPERVISOR_GROUP_PERMS: tuple[CasePerm, ...] = (CasePerm.VIEW, CasePerm.CHANGE, CasePerm.MANAGE_TEAM)


def role_for_perms(codenames: set[str]) -> str | None:
    """The strongest team role whose permissions are all in `codenames`."""
    for role in (TeamRole.LEAD, TeamRole.INVESTIGATOR, TeamRole.VIEWER):
        if all(p in codenames for p in TEAM_ROLE_PERMS[role]):
            return role
    return None
