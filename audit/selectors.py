"""Scoped reads of the audit log: auditors see their agency's events; case leads (and the
agency's supervisors, who hold manage_team through their group) see their cases' events.
Also checkpoints and proofs, answered from stored subtree hashes."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from rest_framework.exceptions import NotFound, ValidationError

from audit import tree
from audit.models import AuditEvent, ChainHead, Checkpoint
from caseapi.exceptions import Conflict
from cases import selectors as case_selectors
from cases.models import Role
from cases.permissions import CasePerm


def audit_event_list(*, user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    """Events of the cases `user` manages (case_id IN a subquery: a semi-join on the
    (case_id, id) index); for an auditor, also every event of their agency.

    An auditor's case ids are read first (one query, usually empty: auditors are seldom on a
    team), so their scope is `agency_id = A OR case_id IN (ids)`, which PostgreSQL answers
    from the (agency, id) and (case_id, id) indexes; `agency_id = A OR case_id IN (subquery)`
    would be a filter over every event of every agency."""
    if not user or not user.is_authenticated:
        return AuditEvent.objects.none()
    agency_id = case_selectors.user_agency_id(user)
    if Role.AUDITOR in case_selectors.user_roles(user) and agency_id is not None:
        managed = case_selectors.case_ids_for(user, CasePerm.MANAGE_TEAM)
        return AuditEvent.objects.filter(
            Q(agency_id=agency_id) | Q(case_id__in=list(managed.values_list("id", flat=True)))
        )
    return AuditEvent.objects.filter(case_selectors.in_scope("case_id", user, CasePerm.MANAGE_TEAM))


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    leaf_index: int
    tree_size: int
    entry_hash: str
    leaf_hash: bytes
    root_hash: bytes
    proof: list[bytes]
    checkpoint: str | None


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]


EVENT_NOT_SEALED = "This event is not sealed yet; retry in a moment."
NO_CHECKPOINT = "No checkpoint has been made yet."
TREE_SIZE_RANGE = "tree_size must be between the event's seq ({seq}) and the sealed log size ({size})."
CONSISTENCY_RANGE = "Sizes must satisfy 1 <= from <= to <= the sealed log size ({size})."


def sealed_size() -> int:
    return ChainHead.objects.values_list("size", flat=True).get(pk=ChainHead.SINGLETON)


def checkpoint_latest() -> Checkpoint:
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    if checkpoint is None:
        raise NotFound(NO_CHECKPOINT)
    return checkpoint


def audit_event_by_seq(*, user: AbstractBaseUser, seq: int) -> AuditEvent:
    event = audit_event_list(user=user).filter(seq=seq).first()
    if event is None:
        raise NotFound()
    return event


def inclusion_proof(*, event: AuditEvent, tree_size: int | None) -> InclusionProof:
    """Proof that `event` is leaf seq-1 of the tree of `tree_size` (default: the latest
    checkpoint's size), from stored subtree hashes: O(log n) rows."""
    if event.seq is None:
        raise Conflict(EVENT_NOT_SEALED)
    size = sealed_size()
    if tree_size is None:
        latest = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first()
        tree_size = latest if latest is not None and latest >= event.seq else size
    if not event.seq <= tree_size <= size:
        raise ValidationError({"tree_size": [TREE_SIZE_RANGE.format(seq=event.seq, size=size)]})
    checkpoint = Checkpoint.objects.filter(tree_size=tree_size).values_list("signed_note", flat=True).first()
    return InclusionProof(
        seq=event.seq,
        leaf_index=event.seq - 1,
        tree_size=tree_size,
        entry_hash=event.entry_hash,
        leaf_hash=tree.leaf_of(event.entry_hash),
        root_hash=tree.root_at(tree_size),
        proof=tree.inclusion_proof(event.seq - 1, tree_size),
        checkpoint=checkpoint,
    )


def consistency_proof(*, old_size: int, new_size: int) -> ConsistencyProof:
    size = sealed_size()
    if not 1 <= old_size <= new_size <= size:
        raise ValidationError({"to": [CONSISTENCY_RANGE.format(size=size)]})
    return ConsistencyProof(
        old_size=old_size,
        new_size=new_size,
        old_root=tree.root_at(old_size),
        new_root=tree.root_at(new_size),
        proof=tree.consistency_proof(old_size, new_size),
    )
