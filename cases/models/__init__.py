"""Domain models, one module per concern."""

from cases.models.agency import Agency, AgencyKind, Profile, Role
from cases.models.auth import AuthToken
from cases.models.case import (
    Case,
    CaseGroupObjectPermission,
    CaseKind,
    CaseNumberCounter,
    CasePriority,
    CaseStatus,
    CaseUserObjectPermission,
    TeamRole,
)
from cases.models.evidence import CustodyAction, CustodyEvent, EvidenceItem, EvidenceKind, EvidenceStatus
from cases.models.handoff import (
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffLead,
    HandoffStatus,
    HandoffUserObjectPermission,
    PacketStatus,
)
from cases.models.lead import (
    DeconflictionHit,
    Identifier,
    IdentifierKind,
    Lead,
    LeadIdentifier,
    LeadSource,
    LeadStatus,
)

__all__ = [
    "Agency",
    "AgencyKind",
    "AuthToken",
    "Case",
    "CaseGroupObjectPermission",
    "CaseKind",
    "CaseNumberCounter",
    "CasePriority",
    "CaseStatus",
    "CaseUserObjectPermission",
    "CustodyAction",
    "CustodyEvent",
    "DeconflictionHit",
    "EvidenceItem",
    "EvidenceKind",
    "EvidenceStatus",
    "ExportPacket",
    "Handoff",
    "HandoffEvidence",
    "HandoffLead",
    "HandoffStatus",
    "HandoffUserObjectPermission",
    "Identifier",
    "IdentifierKind",
    "Lead",
    "LeadIdentifier",
    "LeadSource",
    "LeadStatus",
    "PacketStatus",
    "Profile",
    "Role",
    "TeamRole",
]
