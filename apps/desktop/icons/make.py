#!/usr/bin/env python3
"""Draws the Nexus icon (a blue rounded square with a white N) as RGBA PNGs
of the sizes the Tauri bundle wants, with the standard library alone."""
import struct
import zlib


def png(size: int) -> bytes:
    rows = []
    r = size * 0.22
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            # Rounded square: distance to the nearest corner centre.
            cx = min(max(x + 0.5, r), size - r)
            cy = min(max(y + 0.5, r), size - r)
            inside = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r
            u, v = (x + 0.5) / size, (y + 0.5) / size
            # The N: two posts and a diagonal.
            post = 0.28 <= v <= 0.72 and (0.28 <= u <= 0.38 or 0.62 <= u <= 0.72)
            d = abs((u - 0.28) / 0.44 - (v - 0.28) / 0.44)
            diag = 0.28 <= v <= 0.72 and 0.28 <= u <= 0.72 and d <= 0.12
            if not inside:
                row += bytes([0, 0, 0, 0])
            elif post or diag:
                row += bytes([255, 255, 255, 255])
            else:
                row += bytes([59, 91, 219, 255])
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        with open(os.path.join(here, name), "wb") as f:
            f.write(png(size))
