"""Server side of the child pipe protocol: 4-byte big-endian length + UTF-8 JSON frames (no pickle)."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest reply accepted from a child; anything bigger means a confused or hostile child."""


class ProtocolError(RuntimeError):
    """The child sent something that is not a valid frame."""


def encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message).encode("utf-8")
    return HEADER.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """Read one frame; raises asyncio.IncompleteReadError on EOF and ProtocolError on garbage."""
    header = await reader.readexactly(HEADER.size)
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
    payload = await reader.readexactly(size)
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"undecodable frame: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message
