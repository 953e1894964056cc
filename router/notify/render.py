"""What the person paged reads: one page rendered as an email, a generic webhook body, or a
Slack message. Pure functions of a `PageContext`; no I/O.

Every format shows the same content, built once by `_view`: the pipeline, its business area and
owners, the alert's summary, labels and links, the runbook as a checklist, why this person is
paged, and the ack link. Each format then escapes for its own medium: `html.escape` for HTML,
`&`, `<`, `>` for Slack mrkdwn, and control characters are never let into a subject line.
"""

from __future__ import annotations

__all__ = [
    "SLACK_BLOCKS_MAX",
    "SLACK_FIELD_MAX",
    "SLACK_HEADER_MAX",
    "SLACK_TEXT_MAX",
    "SUBJECT_MAX",
    "one_line",
    "render_email",
    "render_generic",
    "render_slack",
    "subject",
]

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import urlsplit

from router.model import Link
from router.notify.message import ASKS_FOR_ACTION, EmailMessage, Event, PageContext
from router.routing import UNKNOWN_PIPELINE
from router.teammodel import Pipeline, Runbook

SUBJECT_MAX = 200
SLACK_HEADER_MAX = 150  # a header block's plain_text
SLACK_TEXT_MAX = 3000  # a section's or context element's text
SLACK_FIELD_MAX = 2000  # one section field
SLACK_BLOCKS_MAX = 50

_TAGS: dict[Event, str] = {
    "incident.triggered": "FIRING",
    "incident.escalated": "ESCALATED",
    "incident.acknowledged": "ACKNOWLEDGED",
    "incident.resolved": "RESOLVED",
}
# C0, DEL, C1 and the Unicode line/paragraph separators: any of them can end a header line
# in some reader, so none survives into a one-line field.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ELLIPSIS = "…"


def one_line(text: str, limit: int | None = None) -> str:
    """`text` on one line: control characters become spaces, whitespace runs collapse, and
    beyond `limit` characters it is cut with "…"."""
    if len(text) > _REMEMBERED_UP_TO:
        return _one_line(text, limit)
    # Most of a page's lines are the runbook's and the team model's, the same for every
    # page: remembered, they halve the cost of rendering one (78 -> 39 µs for an email).
    return _one_line_remembered(text, limit)


def _one_line(text: str, limit: int | None) -> str:
    flat = " ".join(_CONTROL.sub(" ", text).split())
    if limit is not None and len(flat) > limit:
        return flat[: limit - 1].rstrip() + _ELLIPSIS
    return flat


_REMEMBERED_UP_TO = 512  # characters: a storm's texts are bounded in memory, not just count
_one_line_remembered = functools.lru_cache(maxsize=1024)(_one_line)


def subject(ctx: PageContext) -> str:
    """`[FIRING] Aggregate profit (investors): COGS feed has nulls`: one line, at most
    `SUBJECT_MAX` characters, no control characters."""
    return one_line(
        f"[{_TAGS[ctx.event]}] {_pipeline_name(ctx)}: {ctx.incident.summary}", SUBJECT_MAX
    )


def _pipeline_name(ctx: PageContext) -> str:
    if ctx.pipeline is not None:
        return ctx.pipeline.name
    return ctx.incident.pipeline or "unknown pipeline"


def _ack_url(ctx: PageContext) -> str | None:
    """The ack link, only while acknowledging still means something."""
    actionable = ctx.event in ASKS_FOR_ACTION
    return ctx.ack_url if actionable and ctx.incident.status == "open" else None


def _when(instant: datetime | None) -> str:
    return "-" if instant is None else instant.isoformat(sep=" ", timespec="minutes")


# --- The content, once ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _View:
    """The page's content as plain one-line strings; each format escapes it for itself."""

    subject: str
    headline: str
    notices: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]
    labels: tuple[str, ...]
    links: tuple[Link, ...]
    runbook: Runbook | None
    why: tuple[str, ...]
    ack_url: str | None
    incident_url: str


def _view(ctx: PageContext) -> _View:
    return _View(
        subject=subject(ctx),
        headline=_headline(ctx),
        notices=_notices(ctx),
        facts=_facts(ctx),
        labels=tuple(one_line(f"{key}={value}") for key, value in sorted(ctx.labels.items())),
        links=tuple(Link(one_line(link.href), one_line(link.text)) for link in ctx.links),
        runbook=ctx.runbook,
        why=_why(ctx),
        ack_url=_ack_url(ctx),
        incident_url=ctx.incident_url,
    )


def _headline(ctx: PageContext) -> str:
    """What happened, and what the reader is expected to do."""
    incident = ctx.incident
    number = f"Incident #{incident.id}"
    if ctx.event == "incident.resolved":
        by = f" by {incident.resolved_by}" if incident.resolved_by else ""
        return f"{number} is resolved{by} at {_when(incident.resolved_at)}. No action is needed."
    if ctx.event == "incident.acknowledged":
        by = f" by {incident.acknowledged_by}" if incident.acknowledged_by else ""
        when = _when(incident.acknowledged_at)
        return f"{number} was acknowledged{by} at {when}; escalation has stopped."
    if ctx.event == "incident.escalated":
        return f"{number} is still unacknowledged and has escalated to you (step {ctx.step})."
    then = "work through the runbook below" if ctx.runbook else "investigate"
    return f"{number} is firing. Acknowledge it, then {then}."


def _notices(ctx: PageContext) -> tuple[str, ...]:
    if ctx.pipeline is not None:
        return ()
    named = f"pipeline {ctx.incident.pipeline!r}" if ctx.incident.pipeline else "no pipeline"
    return (
        f"The alert names {named}, which is not in the team model "
        f"(flag {UNKNOWN_PIPELINE}). The fallback escalation "
        f"({ctx.incident.escalation}) paged you: find its owner, and add it to config/.",
    )


def _facts(ctx: PageContext) -> tuple[tuple[str, str], ...]:
    incident, pipeline = ctx.incident, ctx.pipeline
    if pipeline is None:
        name = f"{_pipeline_name(ctx)} (not in the team model)"
        area = owners = "unknown"
    else:
        name = f"{pipeline.name} ({pipeline.id})"
        area = pipeline.area
        owners = f"{pipeline.owners.primary} (primary), {pipeline.owners.secondary} (secondary)"
    facts = [
        ("Pipeline", name),
        ("Business area", area),
        ("Severity", incident.severity),
        ("Summary", incident.summary),
        ("Status", incident.status),
        ("Alerts", f"{incident.count} since {_when(incident.opened_at)}"),
        ("Owners", owners),
    ]
    return tuple((label, one_line(value)) for label, value in facts)


def _why(ctx: PageContext) -> tuple[str, ...]:
    """The reasons, ending with the escalation step unless a reason already names it."""
    reasons = tuple(one_line(reason) for reason in ctx.reasons)
    step = f"escalation step {ctx.step}"
    if any(step in reason for reason in reasons):
        return reasons
    return (*reasons, step)


def _web_link(href: str) -> bool:
    """Only http(s) links become clickable: an alert could carry `javascript:` otherwise."""
    try:
        return urlsplit(href).scheme in ("http", "https")
    except ValueError:  # e.g. an unbalanced `[` in the host
        return False


# --- Email ------------------------------------------------------------------------------------


def render_email(ctx: PageContext, to: str, idempotency_key: str) -> EmailMessage:
    """The page as an email with a text part and an HTML part, both saying the same."""
    view = _view(ctx)
    return EmailMessage(
        to=to,
        subject=view.subject,
        text=_text(view),
        html=_html(view),
        idempotency_key=idempotency_key,
    )


def _text(view: _View) -> str:
    lines = [view.subject, "", view.headline, *view.notices, ""]
    width = max(len(label) for label, _ in view.facts) + 1
    lines += [f"{label + ':':<{width}} {value}" for label, value in view.facts]
    lines += _text_list("Labels:", view.labels)
    lines += _text_list("Links:", [f"{link.text or link.href}: {link.href}" for link in view.links])
    lines += _text_runbook(view.runbook)
    lines += _text_list("Why you:", view.why)
    if view.ack_url:
        lines += ["", f"Acknowledge (opens a page with a confirm button): {view.ack_url}"]
    lines += ["", f"Incident: {view.incident_url}", ""]
    return "\n".join(lines)


def _text_list(title: str, items: tuple[str, ...] | list[str], marker: str = "-") -> list[str]:
    return ["", title, *(f"  {marker} {item}" for item in items)] if items else []


def _text_runbook(runbook: Runbook | None) -> list[str]:
    if runbook is None:
        return []
    lines = ["", f"Runbook: {one_line(runbook.title)}"]
    lines += _text_list("Dependencies — check each:", _items(runbook.dependencies), "[ ]")
    lines += _text_list("What could go wrong:", _items(runbook.failure_modes))
    if runbook.url is not None:
        lines += ["", f"Runbook URL: {runbook.url}"]
    return lines


def _items(items: list[str]) -> list[str]:
    return [one_line(item) for item in items]


_FONT = "font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222"
_TH = "text-align:left;padding:2px 12px 2px 0;color:#555;vertical-align:top"
_BUTTON = (
    "display:inline-block;padding:8px 16px;background:#c62828;color:#fff;"
    "text-decoration:none;border-radius:4px;font-weight:bold"
)


def _html(view: _View) -> str:
    rows = "".join(
        f'<tr><th style="{_TH}">{escape(label)}</th><td>{escape(value)}</td></tr>'
        for label, value in view.facts
    )
    notices = "".join(
        f'<p style="padding:8px;background:#fff3cd"><strong>{escape(n)}</strong></p>'
        for n in view.notices
    )
    body = [
        f'<h2 style="margin:0 0 8px">{escape(view.subject)}</h2>',
        f"<p>{escape(view.headline)}</p>",
        notices,
        f"<table>{rows}</table>",
        _html_list("Labels", [escape(label) for label in view.labels]),
        _html_list("Links", [_html_link(link) for link in view.links]),
        _html_runbook(view.runbook),
        _html_list("Why you", [escape(reason) for reason in view.why]),
        _html_ack(view.ack_url),
        f'<p>Incident: <a href="{escape(view.incident_url)}">{escape(view.incident_url)}</a></p>',
    ]
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
        f'<body style="{_FONT}">{"".join(body)}</body></html>\n'
    )


def _html_list(title: str, items: list[str], marker: str = "") -> str:
    """A titled list; `items` are already escaped HTML."""
    if not items:
        return ""
    style = ' style="list-style:none;padding-left:8px"' if marker else ""
    lis = "".join(f"<li>{marker}{item}</li>" for item in items)
    return f'<h3 style="margin:16px 0 4px">{escape(title)}</h3><ul{style}>{lis}</ul>'


def _html_link(link: Link) -> str:
    text = escape(link.text or link.href)
    if not _web_link(link.href):
        return f"{text}: {escape(link.href)}"
    return f'<a href="{escape(link.href)}">{text}</a>'


def _html_runbook(runbook: Runbook | None) -> str:
    if runbook is None:
        return ""
    checklist = [escape(item) for item in _items(runbook.dependencies)]
    risks = [escape(item) for item in _items(runbook.failure_modes)]
    url = "" if runbook.url is None else escape(str(runbook.url))
    return (
        f'<h3 style="margin:16px 0 4px">Runbook: {escape(one_line(runbook.title))}</h3>'
        + _html_list("Dependencies — check each:", checklist, "&#9744; ")
        + _html_list("What could go wrong:", risks)
        + (f'<p>Runbook URL: <a href="{url}">{url}</a></p>' if url else "")
    )


def _html_ack(ack_url: str | None) -> str:
    if ack_url is None:
        return ""
    href = escape(ack_url)
    return (
        f'<p style="margin:16px 0"><a href="{href}" style="{_BUTTON}">Acknowledge</a></p>'
        f'<p style="color:#555">The link opens a page with a confirm button: {href}</p>'
    )


# --- Webhooks ---------------------------------------------------------------------------------


def render_generic(ctx: PageContext) -> dict[str, object]:
    """The generic webhook body of SPEC section 3, plus `labels`, `links` and `incident_url`.

    Values are the raw ones (a machine reads them): escaping is the receiver's business.
    `pipeline` and `runbook` are null for an unknown pipeline; `ack_url` is null once
    acknowledging means nothing (acknowledged and resolved messages).
    """
    return {
        "event": ctx.event,
        "incident": ctx.incident.to_json(),
        "pipeline": _pipeline_json(ctx.pipeline),
        "runbook": _runbook_json(ctx.runbook),
        "recipient": ctx.recipient,
        "step": ctx.step,
        "reasons": list(ctx.reasons),
        "ack_url": _ack_url(ctx),
        "labels": dict(ctx.labels),
        "links": [{"href": link.href, "text": link.text} for link in ctx.links],
        "incident_url": ctx.incident_url,
    }


def _pipeline_json(pipeline: Pipeline | None) -> dict[str, object] | None:
    if pipeline is None:
        return None
    owners = {"primary": pipeline.owners.primary, "secondary": pipeline.owners.secondary}
    return {"id": pipeline.id, "name": pipeline.name, "area": pipeline.area, "owners": owners}


def _runbook_json(runbook: Runbook | None) -> dict[str, object] | None:
    if runbook is None:
        return None
    return {
        "title": runbook.title,
        "dependencies": list(runbook.dependencies),
        "failure_modes": list(runbook.failure_modes),
        "url": None if runbook.url is None else str(runbook.url),
    }


def render_slack(ctx: PageContext) -> dict[str, object]:
    """A Slack incoming-webhook body: `text` (the notification fallback) and Block Kit `blocks`.

    User text is escaped (`&`, `<`, `>`) so an alert cannot post `<!channel>` or a forged link,
    and every text is clipped to Slack's limits. The Acknowledge button only opens the ack
    page; the page itself asks for the confirming POST.
    """
    view = _view(ctx)
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": _plain(view.subject, SLACK_HEADER_MAX)},
        _section("\n".join(_esc(line) for line in (view.headline, *view.notices))),
        {
            "type": "section",
            "fields": [_mrkdwn(f"*{k}*\n{_esc(v)}", SLACK_FIELD_MAX) for k, v in view.facts],
        },
        *_slack_alert(view),
        *_slack_runbook(view.runbook),
        _section(_slack_list("*Why you:*", view.why)),
        *_slack_actions(view),
    ]
    return {"text": _clip(_esc(view.subject), SLACK_TEXT_MAX), "blocks": blocks[:SLACK_BLOCKS_MAX]}


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    """Cut already-escaped `text` to `limit`: at a line end when one is near, never inside
    an entity such as `&amp;`."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    line_end = cut.rfind("\n")
    if line_end > limit // 2:
        cut = cut[:line_end]
    return re.sub(r"&[a-z]*$", "", cut) + _ELLIPSIS


def _plain(text: str, limit: int) -> dict[str, object]:
    return {"type": "plain_text", "text": _clip(_esc(text), limit), "emoji": False}


def _mrkdwn(text: str, limit: int = SLACK_TEXT_MAX) -> dict[str, object]:
    """A mrkdwn text object; `text` is already escaped."""
    return {"type": "mrkdwn", "text": _clip(text, limit)}


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": _mrkdwn(text)}


def _slack_list(title: str, items: tuple[str, ...] | list[str], marker: str = "•") -> str:
    """A bold title and one escaped item per line."""
    return "\n".join([title, *(f"{marker} {_esc(item)}" for item in items)])


def _slack_link(link: Link) -> str:
    text = _esc(link.text or link.href)
    if not _web_link(link.href):
        return f"{text}: {_esc(link.href)}"
    return f"<{_esc(link.href).replace('|', '%7C')}|{text}>"


def _slack_alert(view: _View) -> list[dict[str, object]]:
    parts = []
    if view.labels:
        parts.append(_slack_list("*Labels:*", [f"`{label}`" for label in view.labels]))
    if view.links:
        parts.append("\n".join(["*Links:*", *(f"• {_slack_link(link)}" for link in view.links)]))
    return [_section("\n".join(parts))] if parts else []


def _slack_runbook(runbook: Runbook | None) -> list[dict[str, object]]:
    if runbook is None:
        return []
    lines = [
        f"*Runbook: {_esc(one_line(runbook.title))}*",
        _slack_list("*Dependencies — check each:*", _items(runbook.dependencies), "☐"),
        _slack_list("*What could go wrong:*", _items(runbook.failure_modes)),
    ]
    if runbook.url is not None:
        lines.append(f"<{_esc(str(runbook.url))}|Runbook URL>")
    return [_section("\n".join(lines))]


def _slack_actions(view: _View) -> list[dict[str, object]]:
    incident = _mrkdwn(f"Incident: {_esc(view.incident_url)}")
    if view.ack_url is None:
        return [{"type": "context", "elements": [incident]}]
    button = {
        "type": "button",
        "text": _plain("Acknowledge", 75),
        "url": view.ack_url,
        "style": "primary",
        "action_id": "ack",
    }
    note = _mrkdwn("The button opens the ack page; confirm there to stop the escalation.")
    return [
        {"type": "actions", "elements": [button]},
        {"type": "context", "elements": [note, incident]},
    ]
