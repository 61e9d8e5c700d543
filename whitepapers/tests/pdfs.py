"""Hand-written minimal PDFs for tests: no PDF library is used to build them."""

from __future__ import annotations

import zlib


def _escape(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return escaped.encode("latin-1")


def _serialize(objects: list[bytes]) -> bytes:
    """Header, objects 1..n in order, an xref table with each object's exact byte offset, and the
    trailer with object 1 as the root: strict readers accept the file."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def make_pdf(pages: list[str]) -> bytes:
    """A valid PDF 1.4 with one page per string, each shown in Helvetica 12 pt.

    Objects: 1 catalog, 2 page tree, 3 font, then (page, content stream) pairs. The xref table
    holds each object's exact byte offset, so strict readers accept the file.
    """
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{pid} 0 R".encode() for pid in page_ids)
        + f"] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for pid, text in zip(page_ids, pages, strict=True):
        stream = b"BT /F1 12 Tf 72 720 Td (" + _escape(text) + b") Tj ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> " + f"/Contents {pid + 1} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    return _serialize(objects)


def make_form_bomb(*, calls: int = 400, text_bytes: int = 200_000, nesting: int = 2) -> bytes:
    """A small PDF whose text extraction is unbounded work: the page invokes (`Do`) a form
    XObject `calls` times, that form invokes the next one `calls` times, ... (`nesting` levels),
    and the innermost form shows one `Tj` string of `text_bytes` letters. The streams are
    Flate-compressed, so the file stays around 10 KB while an extractor that expands every
    invocation would produce calls**nesting * text_bytes characters.

    Objects: 1 catalog, 2 page tree, 3 font, 4 page, 5 page content, 6.. the forms (6 is the
    outermost, the last one holds the text).
    """
    forms = list(range(6, 6 + nesting))
    font = b"/Font << /F1 3 0 R >>"

    def stream(body: bytes, extra: bytes = b"") -> bytes:
        packed = zlib.compress(body, 9)
        head = f"<< /Length {len(packed)} /Filter /FlateDecode ".encode() + extra + b" >>"
        return head + b"\nstream\n" + packed + b"\nendstream"

    def calls_of(target: int) -> bytes:
        # each invocation saves and restores the graphics state: q /FmN Do Q
        return b"\n".join([f"q /Fm{target} Do Q".encode()] * calls)

    def resources(target: int | None) -> bytes:
        xobjects = f"/XObject << /Fm{target} {target} 0 R >> ".encode() if target else b""
        return b"/Resources << " + xobjects + font + b" >>"

    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        + resources(forms[0])
        + b" /Contents 5 0 R >>",
        stream(calls_of(forms[0])),
    ]
    for index in range(len(forms)):
        inner = forms[index + 1] if index + 1 < len(forms) else None
        body = (
            calls_of(inner)
            if inner
            else b"BT /F1 12 Tf 72 720 Td (" + b"A" * text_bytes + b") Tj ET"
        )
        extra = b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] " + resources(inner)
        objects.append(stream(body, extra))
    return _serialize(objects)
