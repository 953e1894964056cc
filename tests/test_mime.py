"""Writing an email's bytes directly (`router.notify.mime`, `router.notify.email.wire_email`):
byte for byte what the stdlib path writes, `aiosmtplib.email.flatten_message(build_email(...))`,
for whatever a page says, and without the stdlib for the pages the shipped config renders.
"""

from __future__ import annotations

import email.message
import email.policy
import io
from dataclasses import replace
from datetime import UTC, datetime
from email.generator import BytesGenerator
from pathlib import Path
from typing import Any

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_render import make_context, make_incident

from router.config import load_team_model
from router.notify import email as channel
from router.notify import mime
from router.notify.email import _fast_wire, build_email, message_id, wire_email
from router.notify.message import EmailMessage, Event, PageContext
from router.notify.render import render_email
from router.paging import Planned
from router.settings import Settings
from router.teammodel import TeamModel

CONFIG = Path(__file__).resolve().parents[1] / "config"
NOW = 1_790_000_000.0
BOUNDARY = "=" * 15 + "0123456789abcdef" * 2 + "=="
SENDERS = [
    "Pipeline Alerts <alerts@router.example>",
    "a@b.example",
    Settings().smtp_from,
    "Zoë Ünal <zoe@example.com>",  # an encoded display name
    '"Alerts, the router" <alerts@x.example>',
]
RECIPIENTS = ["alice@example.com", "Alice <alice@example.com>", "Grüße Team <team@example.com>"]
WIRE = email.policy.SMTP
BODY_POLICY = WIRE.clone(max_line_length=mime.BODY_LINE_LENGTH)  # build_email's, for content

# Pieces that exercise the writers' edges: every line break and control the encoders treat
# differently, SMTP's specials at a line start, multi-byte characters, "=" (quoted-printable's
# escape) and lines around the 998-byte limit that decides the transfer encoding.
BODY_PIECES = [
    "\r", "\n", "\r\n", "\x00", "\x0b", "\x0c", "\x1c", "\x7f", "\x85", "\u2028",
    ".", "..", "From ", " ", "\t", "=", "=3D", "é", "✓", "😀", "<p>", "=?utf-8?q?x?=",
    "x" * 995, "x" * 997, "é" * 499, "=" * 333, "😀" * 250,
]  # fmt: skip
HEADER_PIECES = [
    " ", "  ", "\t", "\n", "\x00", "\u2028", "=?", "=?utf-8?q?x?=", "é", "—", "😀", "(", '"',
    "[FIRING]", "a" * 40, "b" * 69, "c" * 77, "d" * 78, "e" * 120,
    "incident-42-20261124T170000000000/incident.triggered/round-1/step-1/member:Alice/email",
]  # fmt: skip


def _joined(pieces: list[str], max_size: int) -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(pieces), st.text(max_size=12))
    return st.lists(piece, max_size=max_size).map("".join)


BODIES = _joined(BODY_PIECES, 40)
HEADER_TEXT = _joined(HEADER_PIECES, 10)


def _stdlib(message: EmailMessage, sender: str, now: float = NOW) -> bytes:
    return flatten_message(build_email(message, sender, now, boundary=BOUNDARY))


# ---------------------------------------------------------------------------------------------
# The whole email


MESSAGES = st.builds(
    EmailMessage,
    to=st.sampled_from(RECIPIENTS),
    subject=HEADER_TEXT,
    text=BODIES,
    html=BODIES,
    idempotency_key=HEADER_TEXT,
)


@settings(max_examples=300, deadline=None)
@example(message=EmailMessage(RECIPIENTS[0], "", "", "", ""), sender=SENDERS[0], now=NOW)
@example(
    message=EmailMessage(RECIPIENTS[2], "s " * 60, "." + "x" * 1000, "From me\r\n.\n", "é" * 50),
    sender=SENDERS[3],
    now=0.0,
)
@example(
    message=EmailMessage(RECIPIENTS[1], "😀", "\x00\r\x1c\n", "a =\t\n" * 12 + "é" * 2000, " k "),
    sender=SENDERS[1],
    now=NOW,
)
@given(
    message=MESSAGES,
    sender=st.sampled_from(SENDERS),
    now=st.floats(min_value=0, max_value=4_000_000_000),
)
def test_the_direct_bytes_are_the_stdlib_paths_bytes(
    message: EmailMessage, sender: str, now: float
) -> None:
    try:
        expected = _stdlib(message, sender, now)
    except Exception as err:  # an empty key trips the stdlib's Message-ID parser
        with pytest.raises(type(err)):
            _fast_wire(message, sender, now, BOUNDARY)
        return
    assert _fast_wire(message, sender, now, BOUNDARY) == expected


def test_an_email_only_the_stdlib_path_can_write_is_left_to_it() -> None:
    # A lone surrogate cannot be encoded: the stdlib path says how that fails.
    message = EmailMessage("a@b.example", "s", "bad \ud800", "<p>ok</p>", "k")
    assert _fast_wire(message, "a@b.example", NOW, BOUNDARY) is None
    with pytest.raises(UnicodeEncodeError):
        wire_email(message, "a@b.example", NOW, boundary=BOUNDARY)


def test_wire_email_draws_a_boundary_like_build_email() -> None:
    message = EmailMessage("a@b.example", "s", "text\n", "<p>html</p>", "k")
    first, second = (wire_email(message, "a@b.example", NOW) for _ in range(2))
    assert first != second  # each email its own boundary
    parsed = email.message_from_bytes(first, policy=email.policy.default)
    boundary = parsed.get_boundary()
    assert boundary is not None
    assert first == _stdlib_with(message, boundary)


def _stdlib_with(message: EmailMessage, boundary: str) -> bytes:
    return flatten_message(build_email(message, "a@b.example", NOW, boundary=boundary))


# ---------------------------------------------------------------------------------------------
# The pages the shipped config renders go the direct way, header registry untouched


@pytest.fixture(scope="module")
def model() -> TeamModel:
    return load_team_model(CONFIG)


def _context(model: TeamModel, pipeline: str, event: Event, **changes: Any) -> PageContext:
    """A step-2 page about an incident on `pipeline`, built as tests/test_render.py builds
    them, acknowledged or resolved as `event` says."""
    later = datetime(2026, 11, 24, 17, 25, tzinfo=UTC)
    incident = make_incident(
        id=4217, pipeline=pipeline, summary="COGS feed has nulls in the 2026-11-24 partition"
    )
    if event == "incident.acknowledged":
        incident = replace(
            incident, status="acknowledged", acknowledged_at=later, acknowledged_by="Bob"
        )
    elif event == "incident.resolved":
        incident = replace(incident, status="resolved", resolved_at=later, resolved_by="Bob")
    return make_context(
        model,
        event,
        incident,
        step=2,
        reasons=("week 5 (cycle week 1): Alice primary, Bob backup", "escalation step 2"),
        incident_url="https://router.example/api/v1/incidents/4217",
        labels={"pipeline": pipeline, "alertname": "CogsFeedNulls", "severity": "critical"},
        **changes,
    )


def _shipped_pages(model: TeamModel) -> list[EmailMessage]:
    """Every pipeline and event, to each member, keyed as router.paging keys pages."""
    events: list[Event] = [
        "incident.triggered",
        "incident.escalated",
        "incident.acknowledged",
        "incident.resolved",
    ]
    pages = []
    for pipeline in [*(p.id for p in model.pipelines), "unknown-pipeline"]:
        for event in events:
            context = _context(model, pipeline, event)
            for member in model.team.members:
                planned = Planned(event, 2, member.name, "member", "email", ())
                key = planned.idempotency_key(context.incident, round_=3)
                assert member.email is not None
                pages.append(render_email(context, member.email, key))
    return pages


def test_every_page_the_shipped_config_renders_is_written_directly(
    model: TeamModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def direct_only(name: str, value: str, fast: bytes | None) -> bytes:
        assert fast is not None, f"{name}: {value!r} went to the header registry"
        return fast

    monkeypatch.setattr(channel, "_folded", direct_only)
    pages = _shipped_pages(model)
    assert len(pages) > 50
    for page in pages:
        for sender in (SENDERS[0], Settings().smtp_from):
            fast = _fast_wire(page, sender, NOW, BOUNDARY)
            assert fast is not None
            assert fast == _stdlib(page, sender)


# ---------------------------------------------------------------------------------------------
# The pieces, each against the stdlib code it copies


def _registry_fold(name: str, value: str) -> bytes:
    return WIRE.fold_binary(name, WIRE.header_factory(name, value))


WORDS = st.lists(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=90),
    min_size=1,
    max_size=12,
).map(" ".join)
NAMES = st.sampled_from(["Subject", "X-Router-Idempotency-Key", "X", "X-" + "h" * 64])


@settings(max_examples=500, deadline=None)
@example(name="Subject", value="c" * 69)  # the longest that fits the first line
@example(name="Subject", value="c" * 70)
@example(name="Subject", value="c" * 77)  # the longest that fits a continuation line
@example(name="Subject", value="c" * 78)
@example(name="Subject", value="=" * 200)  # encoded words: base64 shorter than Q
@example(name="X-" + "h" * 70, value="k" * 100)  # no room for an encoded word on line one
@given(name=NAMES, value=WORDS | HEADER_TEXT)
def test_unstructured_headers_fold_as_the_header_registry_folds_them(name: str, value: str) -> None:
    folded = mime.unstructured_header(name, value)
    if folded is not None:
        assert folded == _registry_fold(name, value)


def test_unstructured_headers_of_every_length_fold_as_the_header_registry_folds_them() -> None:
    for name in ("Subject", "X-Router-Idempotency-Key", "X-" + "h" * 64, "X-" + "h" * 74):
        for length in range(1, 240):
            for value in ("k" * length, ("word " * length)[:length].strip(), "=" * length):
                # Every one of these is written directly (and so must match exactly).
                folded = mime.unstructured_header(name, value)
                assert folded == _registry_fold(name, value), (name, value)


def test_unstructured_header_leaves_the_intricate_cases_to_the_registry() -> None:
    for value in ("", "Zoë", "a=?b", " lead", "two  spaces", "tab\there", "short " + "w" * 80):
        assert mime.unstructured_header("Subject", value) is None


@settings(max_examples=300, deadline=None)
@given(key=HEADER_TEXT, domain=st.sampled_from(["router.example", "x", "a." * 30 + "example"]))
def test_message_ids_fold_as_the_header_registry_folds_them(key: str, domain: str) -> None:
    value = message_id(key, domain)
    folded = mime.msg_id_header("Message-ID", value)
    if key:
        assert folded == _registry_fold("Message-ID", value)
    else:
        assert folded is None  # "<@domain>" is no Message-ID: the registry says what it is


def test_message_ids_of_every_length_fold_as_the_header_registry_folds_them() -> None:
    for length in range(1, 130):  # across both limits: the first line's and a continuation's
        value = message_id("k" * length, "router.example")
        assert mime.msg_id_header("Message-ID", value) == _registry_fold("Message-ID", value)


BOUNDARY_CHARS = st.sampled_from("0123456789abcdefXYZ=_.-")


@settings(max_examples=300, deadline=None)
@given(
    subtype=st.sampled_from(["alternative", "mixed", "related", "x-a"]),
    # Every length equally: the folding changes at a few of them.
    boundary=st.integers(min_value=1, max_value=80).flatmap(
        lambda n: st.text(BOUNDARY_CHARS, min_size=n, max_size=n)
    ),
)
def test_a_multipart_content_type_folds_as_set_boundary_leaves_it(
    subtype: str, boundary: str
) -> None:
    folded = mime.multipart_content_type(subtype, boundary)
    if folded is not None:
        value = f'multipart/{subtype}; boundary="{boundary}"'
        assert folded == _registry_fold("Content-Type", value)


def test_a_multipart_content_type_is_written_directly_only_where_it_is_copied() -> None:
    written = [n for n in range(1, 81) if mime.multipart_content_type("alternative", "b" * n)]
    assert written == list(range(44, 66))  # on a line of its own, in one piece
    assert mime.multipart_content_type("alternative", '"quoted"' * 6) is None


def test_the_boundaries_build_email_draws_get_the_direct_content_type() -> None:
    assert mime.multipart_content_type("alternative", channel._boundary()) is not None


def _stdlib_part(subtype: str, text: str) -> bytes:
    part = email.message.EmailMessage(policy=BODY_POLICY)
    part.set_content(text, subtype=subtype)
    del part["MIME-Version"]
    out = io.BytesIO()
    BytesGenerator(out, policy=WIRE).flatten(part)
    return out.getvalue()


# Lines of 997 to 1000 bytes with "=", a space or a tab placed near the end: where
# quoted-printable cuts a line, keeps an escape whole and quotes final whitespace.
EDGE_LINES = st.builds(
    lambda length, tail: "y" * (length - len(tail)) + tail,
    st.integers(min_value=990, max_value=1000),
    st.sampled_from(["", " ", "\t", "=", "= ", "==", "é", "é ", "x ", "x=x", "=x=x\t"]),
)


@settings(max_examples=400, deadline=None)
@example(text="x" * 998)
@example(text="x" * 999)
@example(text="é" * 499 + "\n" + "a " * 600)
@given(text=BODIES | st.lists(EDGE_LINES | BODIES, max_size=14).map("\n".join))
def test_a_text_part_is_what_set_content_makes_and_the_generator_writes(text: str) -> None:
    for subtype in ("plain", "html"):
        assert mime.text_part(subtype, text) == _stdlib_part(subtype, text)


def test_quoted_printable_and_base64_are_both_chosen_as_the_stdlib_chooses() -> None:
    assert mime.text_body(b"a" * 1200)[0] == "quoted-printable"
    assert mime.text_body("é".encode() * 700)[0] == "base64"
    assert mime.text_body(b"a\n")[0] == "7bit"
    assert mime.text_body("é\n".encode())[0] == "8bit"


def test_quoted_printable_cuts_lines_as_quoprimime_does_at_every_offset() -> None:
    # Every position of an escape or of final whitespace relative to the 998-column cut:
    # the branches of body_encode that random text seldom reaches.
    for length in range(990, 1003):
        for tail in ("", " ", "\t", "=", "= ", "=\t", "é", "é ", "x ", "==", "=x="):
            text = "y" * (length - len(tail)) + tail + "\nend \n"
            assert mime.text_part("plain", text) == _stdlib_part("plain", text), (length, tail)
