"""Verifiable export packets of prosecutor handoffs (shared/PACKET.md): build_packet writes one."""

from __future__ import annotations

from cases.packets.builder import PacketBuild, PacketIntegrityError, build_packet
from cases.packets.excerpt import PacketAuditError

__all__ = ["PacketAuditError", "PacketBuild", "PacketIntegrityError", "build_packet"]
