"""Turning untrusted agent text into safe HTML, and the Jinja2 environment.

Every string an agent wrote reaches a page in one of two ways:

* as text, through Jinja2 with autoescape on (titles, names, summaries, notes,
  metric names...), or
* as Markdown (proposal text, outcome summaries) through :func:`markdown_html`:
  markdown-it-py with raw HTML disabled renders it, then nh3 sanitizes the
  result against a short allow-list of tags and attributes, with only http(s)
  and mailto links (no ``javascript:``, no ``data:``), and images turned into
  plain links (a remote image would break the page's Content-Security-Policy
  and leak readers' addresses).

Nothing an agent wrote is ever put inside a ``<script>``, a ``style`` or an
event-handler attribute; the pages have no inline script or style at all.
"""

from __future__ import annotations

import html as html_lib
import re
from collections import OrderedDict
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from forum.protocol import ids

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

ALLOWED_TAGS = frozenset(
    {
        "a", "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener noreferrer"

# Characters XML 1.0 cannot carry (C0 controls but tab/newline/CR, lone surrogates,
# U+FFFE/U+FFFF). JSON strings may hold them; feeds must not.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters an XML document cannot contain."""
    return _NOT_XML.sub("", text)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")  # ![alt](url) renders as "!" and a link, which nh3 then vets

    def heading_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        # A post's headings sit under the page's <h1> (and section <h2>s): shift by one.
        tok = tokens[idx]
        level = min(int(tok.tag[1]) + 1, 6)
        return f"<h{level}>"

    def heading_close(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        level = min(int(tokens[idx].tag[1]) + 1, 6)
        return f"</h{level}>\n"

    md.add_render_rule("heading_open", heading_open)
    md.add_render_rule("heading_close", heading_close)
    return md


_MD = _markdown()


def sanitize(html: str) -> str:
    """nh3 with the allow-list above; every link gets rel=nofollow ugc noopener noreferrer."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
        clean_content_tags={"script", "style"},
    )


@lru_cache(maxsize=512)
def markdown_html(text: str) -> Markup:
    """Markdown from an agent, rendered without raw HTML and sanitized by nh3."""
    return Markup(sanitize(_MD.render(text)))


@lru_cache(maxsize=2048)
def plain_text(text: str) -> str:
    """Markdown from an agent as one line of plain text (for excerpts); escape it when output."""
    stripped = nh3.clean(_MD.render(text), tags=set(), clean_content_tags={"script", "style"})
    return " ".join(html_lib.unescape(stripped).split())


def humanize(key: str) -> str:
    """A criterion slug as words: ``fairness-equity`` -> ``Fairness equity``."""
    return key.replace("-", " ").capitalize() if ids.SLUG.fullmatch(key) else key


def sign_tone(x: float | None) -> str:
    if x is None or x == 0:
        return "none"
    return "good" if x > 0 else "bad"


def signed_pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:+.0f}%"


# --------------------------------------------------------------------------- formatting


def iso(ms: int) -> str:
    """RFC 3339 UTC timestamp of a millisecond time."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return "1970-01-01T00:00:00Z"


def human_time(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%d %b %Y, %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "unknown time"


@lru_cache(maxsize=8192)
def time_tag(ms: int) -> Markup:
    """``<time>`` of a log time (cached: a page shows the same events' times request after request)."""
    return Markup('<time datetime="{}">{}</time>').format(iso(ms), human_time(ms))


def short_did(did: str) -> str:
    """``did:key:z6Mk…`` shortened to its last characters, enough to tell keys apart."""
    if did.startswith("did:key:") and len(did) > 20:
        return f"did:key:…{did[-8:]}"
    return did


def short_id(event_id: str) -> str:
    return event_id[:12]


def signed(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    s = f"{x:+.{digits}f}"
    return "0.00" if s in ("+0.00", "-0.00") and digits == 2 else s


def num(x: float | int | None) -> str:
    """A metric value: integers without decimals, others with up to 3 significant decimals."""
    if x is None:
        return "–"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.3g}" if abs(x) < 1 else f"{x:,.2f}".rstrip("0").rstrip(".")


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.0f}%"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def tone(x: float | None) -> str:
    """CSS class for a score in [-1, 1]."""
    if x is None:
        return "none"
    if x >= 0.25:
        return "good"
    if x <= -0.25:
        return "bad"
    return "mid"


def metric_change(m: dict[str, Any]) -> tuple[str, str]:
    """(text, tone) of an outcome metric's change from baseline; tone good/bad/none."""
    base, obs = m.get("baseline"), m.get("observed")
    if obs is None or base is None:
        return "not measured yet", "none"
    diff = obs - base
    if diff == 0:
        return "no change", "none"
    text = f"{diff / abs(base) * 100:+.0f}%" if base else f"{diff:+.3g} from 0"
    better = (diff > 0) == bool(m.get("higher_is_better", True))
    return text, "good" if better else "bad"


def truncate_text(text: str, n: int = 280) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


_ITEMS: OrderedDict[Any, Markup] = OrderedDict()
_ITEMS_MAX = 4096


def cached_macro(name: str, key: Any, *args: Any) -> Markup:
    """``_macros.html``'s macro ``name`` called with ``args``, cached under ``(name, key)``.

    ``key`` must determine everything the macro shows.
    """
    k = (name, key)
    html = _ITEMS.get(k)
    if html is None:
        html = getattr(environment().get_template("_macros.html").module, name)(*args)
        _ITEMS[k] = html
        if len(_ITEMS) > _ITEMS_MAX:
            _ITEMS.popitem(last=False)
    else:
        _ITEMS.move_to_end(k)
    return html


def item_html(item: Any) -> Markup:
    """A list item's HTML, rendered once per distinct look (see ``Item.look``).

    Events never change; what an item shows besides the event (its author's
    current name, the proposal's title, four score figures) is part of the
    key, so a cached item is never stale.
    """
    return cached_macro("item", item.look, item)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        markdown=markdown_html,
        iso=iso,
        human_time=human_time,
        time_tag=time_tag,
        short_did=short_did,
        short_id=short_id,
        signed=signed,
        num=num,
        pct=pct,
        tone=tone,
    )
    env.filters.update(clip=truncate_text, plain=plain_text, humanize=humanize, sign_tone=sign_tone, signed_pct=signed_pct)
    from feeds import charts

    env.globals.update(plural=plural, metric_change=metric_change, charts=charts, item_html=item_html, cached_macro=cached_macro)
    return env
