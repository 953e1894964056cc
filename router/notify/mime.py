"""MIME pieces written straight to bytes, exactly as the `email` package writes them.

`email.message.EmailMessage` and `email.generator.BytesGenerator` build a tree of header objects
and parts and then walk it; for an alert storm that is most of the CPU an email costs. The
functions here produce the same bytes for the shapes the router sends (`email.policy.SMTP`,
which aiosmtplib writes with: CRLF, headers folded at 78 columns, `cte_type` "8bit"), or None
where the `email` package's own rules are too intricate to copy, so the caller can let it do the
work. Byte-identical output is the contract; tests/test_mime.py holds each function to the
stdlib's. What each copies is named in its docstring (CPython 3.11's `email` package).
"""

from __future__ import annotations

__all__ = [
    "BODY_LINE_LENGTH",
    "CRLF",
    "HEADER_LINE_LENGTH",
    "msg_id_header",
    "multipart",
    "multipart_content_type",
    "text_body",
    "text_part",
    "unstructured_header",
]

import base64
import binascii
import re
from collections.abc import Sequence
from string import ascii_letters, digits

CRLF = b"\r\n"
HEADER_LINE_LENGTH = 78  # email.policy.SMTP.max_line_length: where headers fold
# The policy a part's content is encoded with (router.notify.email's, RFC 5322's limit): a
# body line longer than this makes set_content pick quoted-printable or base64.
BODY_LINE_LENGTH = 998

# Printable ASCII words separated by single spaces, none of them able to start an encoded word
# (checked apart): header text the folder treats as plain tokens.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
# RFC 5322 atext: a Message-ID of these (plus "@" and dots in the domain) is one token.
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_MSG_ID = re.compile(rf"<{_ATEXT}@{_ATEXT}(?:\.{_ATEXT})*>")
# A boundary that needs no quoting, and a MIME subtype that is one plain token.
_BOUNDARY = re.compile(r"[0-9A-Za-z=_.-]+")
_TOKEN = re.compile(r"[0-9A-Za-z-]+")
# RFC 2047 "Q" encoding (email._encoded_words): bytes kept as they are; others become =XX.
_Q_SAFE = frozenset(b"-!*+/" + ascii_letters.encode() + digits.encode())
_Q = {byte: f"={byte:02X}" for byte in range(128) if byte not in _Q_SAFE}
_EW_CHROME = len("=?utf-8?q??=")
# Quoted-printable body encoding (email.quoprimime): tab and printable ASCII are kept, except
# "=", which is quoted first; every other byte becomes "=XX".
_QP_KEPT = b"\t" + bytes(range(0x20, 0x7F))
_QP_HEX = tuple(b"=%02X" % byte for byte in range(256))


def unstructured_header(name: str, value: str) -> bytes | None:
    """`name: value` as `email.headerregistry.UnstructuredHeader.fold` writes it with
    `email.policy.SMTP` (which `_refold_parse_tree` does), for a value of printable ASCII words
    separated by single spaces: on the first line if it fits, else whole on a continuation
    line if it fits there, else word by word; a single word too long for any line is wrapped
    in encoded words. None for anything else (non-ASCII, an empty value, text that looks like
    an encoded word, several words one of which fits no line): the header registry folds it.
    """
    if "=?" in value or not _PLAIN.fullmatch(value):
        return None
    if len(name) + 2 + len(value) <= HEADER_LINE_LENGTH:
        return f"{name}: {value}\r\n".encode()
    if 1 + len(value) <= HEADER_LINE_LENGTH:
        return f"{name}:\r\n {value}\r\n".encode()
    words = value.split(" ")
    if len(words) == 1:
        return _encoded_word_lines(f"{name}: ", value)
    if max(map(len, words)) + 1 > HEADER_LINE_LENGTH:
        return None  # the folder encodes the long word and may merge its neighbours into it
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) <= HEADER_LINE_LENGTH:
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    return ("\r\n".join(lines) + "\r\n").encode()


def _encoded_word_lines(first: str, word: str) -> bytes:
    """`_fold_as_ew` for one ASCII word after `first` ("Name: "): as many characters as fit
    in an encoded word on each line ("Q" unless base64 is 5 or more characters shorter),
    each further line starting with a space. An encoded word that cannot hold even the next
    character is written empty, as the stdlib does."""
    lines = [first]
    start = 0
    while start < len(word):
        room = HEADER_LINE_LENGTH - len(lines[-1])
        if room <= _EW_CHROME:
            lines.append(" ")
            continue
        end = min(len(word), start + room - _EW_CHROME)
        encoded = _encoded_word(word[start:end])
        while len(encoded) > room:
            end -= 1
            encoded = _encoded_word(word[start:end])
        lines[-1] += encoded
        start = end
        if start < len(word):
            lines.append(" ")
    return ("\r\n".join(lines) + "\r\n").encode()


def _encoded_word(text: str) -> str:
    """`email._encoded_words.encode(text, "utf-8")` for ASCII `text`."""
    quoted = text.translate(_Q)
    b_length = (len(text) + 2) // 3 * 4
    if len(quoted) - b_length < 5:
        return f"=?utf-8?q?{quoted}?="
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def msg_id_header(name: str, value: str) -> bytes | None:
    """`name: value` as `email.headerregistry.MessageIDHeader.fold` writes it with
    `email.policy.SMTP`, for a value of the form <atext@dot-atom>: one token, which never
    breaks, so it goes on the first line if it fits, else on a continuation line if it fits
    there, else on the first line regardless. None for any other value."""
    if not _MSG_ID.fullmatch(value):
        return None
    if len(name) + 2 + len(value) > HEADER_LINE_LENGTH >= 1 + len(value):
        return f"{name}:\r\n {value}\r\n".encode()
    return f"{name}: {value}\r\n".encode()


def multipart_content_type(subtype: str, boundary: str) -> bytes | None:
    """The Content-Type header `set_boundary` leaves on a multipart message, as folded with
    `email.policy.SMTP`, when the value fits on no line and the boundary needs no quoting (a
    boundary of the `email` package's kind): `_fold_mime_parameters` puts the parameter on a
    line of its own. None otherwise."""
    first = f"Content-Type: multipart/{subtype};"
    parameter = f'boundary="{boundary}"'
    value = f"multipart/{subtype}; {parameter}"
    if not (_TOKEN.fullmatch(subtype) and _BOUNDARY.fullmatch(boundary)):
        return None
    if 1 + len(value) <= HEADER_LINE_LENGTH or len(first) + 1 + len(parameter) < HEADER_LINE_LENGTH:
        return None  # it would fit on a line: not worth copying that case too
    if len(first) > HEADER_LINE_LENGTH or len(parameter) + 2 > HEADER_LINE_LENGTH:
        return None  # the parameter is split in RFC 2231 sections
    return f"{first}\r\n {parameter}\r\n".encode()


def text_part(subtype: str, text: str, *, mime_version: bool = False) -> bytes | None:
    """A text/`subtype` part holding `text` in UTF-8 as `EmailMessage.set_content` makes it
    and `BytesGenerator` writes it: Content-Type, Content-Transfer-Encoding, MIME-Version when
    the part is an EmailMessage of its own (`add_alternative` makes those), a blank line, the
    body. None if `text` cannot be encoded (a lone surrogate): set_content raises there."""
    try:
        cte, body = text_body(text.encode())
    except UnicodeEncodeError:
        return None
    version = b"MIME-Version: 1.0\r\n" if mime_version else b""
    return b"".join(
        (
            b'Content-Type: text/%s; charset="utf-8"\r\n' % subtype.encode(),
            b"Content-Transfer-Encoding: %s\r\n" % cte.encode(),
            version,
            CRLF,
            body,
        )
    )


def text_body(data: bytes) -> tuple[str, bytes]:
    """The Content-Transfer-Encoding `email.contentmanager._encode_text` picks for the
    UTF-8 text `data` (policy `cte_type` "8bit", lines of at most BODY_LINE_LENGTH) and the
    body the generator writes for it: lines split at CR, LF or CRLF and ended with CRLF.

    7bit or 8bit while every line fits; else quoted-printable, unless base64 is shorter for
    the first ten lines (CRLF-ended, as the stdlib measures them)."""
    lines = data.splitlines()
    if max(map(len, lines), default=0) <= BODY_LINE_LENGTH:
        return ("7bit" if data.isascii() else "8bit"), b"\r\n".join(lines) + CRLF
    quoted = [_qp_line(line) for line in lines]
    sniff_qp = sum(len(line) + 1 for line in quoted[:10])
    sniff_base64 = len(binascii.b2a_base64(b"\r\n".join(lines[:10]) + CRLF))
    if sniff_qp > sniff_base64:
        return "base64", _base64_body(b"\r\n".join(lines) + CRLF)
    return "quoted-printable", (b"\n".join(quoted) + b"\n").replace(b"\n", CRLF)


def _qp_line(line: bytes) -> bytes:
    """One line of `email.quoprimime.body_encode(body, BODY_LINE_LENGTH)`: quoted, cut into
    pieces with soft breaks ("=" and "\\n") without splitting an escape, and a final space or
    tab quoted (or moved past a soft break when there is no room left to quote it)."""
    line = _qp_quote(line)
    pieces = []
    start = 0
    last_start = len(line) - 1 - BODY_LINE_LENGTH
    while start <= last_start:
        stop = start + BODY_LINE_LENGTH - 1
        if line[stop - 2] == ord("="):
            pieces.append(line[start : stop - 1])
            start = stop - 2
        elif line[stop - 1] == ord("="):
            pieces.append(line[start:stop])
            start = stop - 1
        else:
            pieces.append(line[start:stop] + b"=")
            start = stop
    if line[-1:] in (b" ", b"\t"):
        room = start - last_start
        if room >= 3:
            tail = _QP_HEX[line[-1]]
        elif room == 2:
            tail = line[-1:] + b"=\n"
        else:
            tail = b"=\n" + _QP_HEX[line[-1]]
        pieces.append(line[start:-1] + tail)
    else:
        pieces.append(line[start:])
    return b"\n".join(pieces)


def _qp_quote(line: bytes) -> bytes:
    """`line` with "=" and every byte that is not tab or printable ASCII as "=XX": a
    `bytes.replace` per distinct byte (a few, for UTF-8 text), as a scan byte by byte in
    Python or with `re` takes longer than the rest of the email. A replacement is all kept
    bytes, so a later one cannot touch it."""
    line = line.replace(b"=", b"=3D")
    for byte in set(line.translate(None, _QP_KEPT)):
        line = line.replace(bytes((byte,)), _QP_HEX[byte])
    return line


def _base64_body(data: bytes) -> bytes:
    """`email.contentmanager._encode_base64`: as many whole 3-byte groups per line as fit
    in BODY_LINE_LENGTH characters."""
    step = BODY_LINE_LENGTH // 4 * 3
    return b"".join(
        binascii.b2a_base64(data[i : i + step], newline=False) + CRLF
        for i in range(0, len(data), step)
    )


def multipart(headers: bytes, boundary: str, parts: Sequence[bytes]) -> bytes:
    """A multipart message as `Generator._handle_multipart` writes it (no preamble or
    epilogue): the headers, a blank line, each part after a delimiter line, and the closing
    delimiter. A part's body ends with CRLF, so a blank line precedes each delimiter."""
    delimiter = b"--" + boundary.encode()
    out = [headers, CRLF, delimiter, CRLF]
    for index, part in enumerate(parts):
        if index:
            out += (CRLF, delimiter, CRLF)
        out.append(part)
    out += (CRLF, delimiter, b"--", CRLF)
    return b"".join(out)
