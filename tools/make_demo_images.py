# Makes the images of labserver/demo_site, the small website every lab server serves by default
# (three pages, CSS, JS, a ~1.5 MB PNG, an SVG, a favicon and a file named "café au lait.png").
# Pure Python on purpose (zlib + struct, no Pillow) and deterministic: rerun it and git sees no change.
"""Regenerate the demo site's images:  python tools/make_demo_images.py"""

import hashlib
import struct
import zlib
from pathlib import Path

SITE = Path(__file__).resolve().parent.parent / "labserver" / "demo_site"


# --- a minimal PNG writer -------------------------------------------------------------------------

def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, pixels: bytes, channels: int = 3) -> bytes:
    """Encode 8-bit RGB (channels=3) or RGBA (channels=4) pixels, row after row, as a PNG file."""
    color_type = {3: 2, 4: 6}[channels]
    stride = width * channels
    # Every row starts with its filter type; 0 means "no filter", the simplest valid choice.
    raw = b"".join(b"\x00" + pixels[y * stride:(y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def noise(label: str, n: int) -> bytes:
    """n pseudo-random bytes that are the same on every machine and every Python version."""
    return hashlib.shake_128(label.encode()).digest(n)


def mix(a, b, t):
    """Blend two RGB colours; t=0 gives a, t=1 gives b."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


# --- the images ---------------------------------------------------------------------------------

def banner(width=1440, height=1080) -> bytes:
    """The big image: a dusk-sky gradient with fine noise, so it stays ~1.5 MB after compression.

    It exists to make the server stream a large file (many send() calls, partial writes)."""
    top, bottom = (32, 48, 96), (240, 150, 90)
    grain = noise("banner", width * height * 3)
    out = bytearray(width * height * 3)
    for y in range(height):
        row = bytes(mix(top, bottom, y / (height - 1))) * width
        start = y * width * 3
        # 2 bits of noise per channel: enough that deflate cannot squeeze the file to nothing.
        out[start:start + width * 3] = bytes(
            min(255, c + (g & 3)) for c, g in zip(row, grain[start:start + width * 3]))
    return png(width, height, bytes(out))


def fill(buf, width, x0, y0, x1, y1, rgb):
    """Paint the rectangle [x0, x1) x [y0, y1) of an RGB buffer."""
    for y in range(y0, y1):
        buf[(y * width + x0) * 3:(y * width + x1) * 3] = bytes(rgb) * (x1 - x0)


def threads(width=480, height=168) -> bytes:
    """A thread-pool timeline: 4 worker lanes, each busy with a few requests (coloured blocks)."""
    buf = bytearray(b"\xff" * (width * height * 3))
    colours = [(66, 133, 244), (52, 168, 83), (251, 188, 5), (234, 67, 53)]
    lane = height // 4
    for i, colour in enumerate(colours):
        fill(buf, width, 0, i * lane + lane // 2 - 1, width, i * lane + lane // 2 + 1, (200, 200, 200))
        x = 8 + 23 * i                               # stagger the lanes so they do not line up
        for length in (60, 34, 90, 48, 70, 40):
            if x + length > width - 8:
                break
            fill(buf, width, x, i * lane + 10, x + length, (i + 1) * lane - 10, colour)
            x += length + 14 + 9 * ((i + length) % 3)   # the gaps are idle time, waiting for clients
    return png(width, height, bytes(buf))


def cafe_au_lait(width=240, height=160) -> bytes:
    """A cup seen from above, for the file whose name has spaces and a non-ASCII letter."""
    buf = bytearray(width * height * 3)
    cx, cy = width / 2, height / 2
    for y in range(height):
        for x in range(width):
            r = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
            if r < 52:
                rgb = mix((196, 152, 108), (150, 100, 60), r / 52)   # the coffee
            elif r < 62:
                rgb = (250, 250, 245)                              # the cup's rim
            elif r < 76:
                rgb = (225, 225, 220)                              # the saucer
            else:
                rgb = (246, 238, 226)                              # the table
            buf[(y * width + x) * 3:(y * width + x + 1) * 3] = bytes(rgb)
    return png(width, height, bytes(buf))


def favicon(size=32) -> bytes:
    """favicon.ico: an ICO container holding one RGBA PNG (a dot between two links)."""
    buf = bytearray(size * size * 4)                  # fully transparent to start with
    for y in range(size):
        for x in range(size):
            dot = (x - 16) ** 2 + (y - 16) ** 2 < 64
            link = 14 <= y < 18 and (x < 8 or x >= 24)
            if dot or link:
                buf[(y * size + x) * 4:(y * size + x + 1) * 4] = bytes((32, 48, 96, 255))
    image = png(size, size, bytes(buf), channels=4)
    # ICONDIR (reserved, type 1 = icon, 1 image) then one ICONDIRENTRY pointing just past itself.
    return (struct.pack("<HHH", 0, 1, 1)
            + struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(image), 6 + 16) + image)


def main():
    files = {
        "images/banner.png": banner(),
        "images/threads.png": threads(),
        "images/café au lait.png": cafe_au_lait(),
        "favicon.ico": favicon(),
    }
    for name, data in files.items():
        path = SITE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{len(data):>9,} bytes  {path.relative_to(SITE.parent.parent)}")


if __name__ == "__main__":
    main()
