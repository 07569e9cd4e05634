"""Reading a notice's communication: HTML to plain text, and the models, versions and dates it names.

Azure writes model names the way marketing does ("GPT-3.5 Turbo", "GPT-4o mini", "gpt-4o (2024-05-13)"); the
catalog and ARM use lowercase ids ("gpt-35-turbo", "gpt-4o-mini"). This module maps the first to the second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from html import unescape
from html.parser import HTMLParser

from modelshift.notices.model import ModelMention

# Tags after which a reader sees a new line; without them list items would run into one sentence.
_BLOCK_TAGS = frozenset(
    {"p", "br", "li", "ul", "ol", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th"}
)


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n" if tag not in {"td", "th"} else " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n" if tag not in {"td", "th"} else " ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(value: str) -> str:
    """Plain text of HTML: tags dropped, entities decoded, one line per block, spaces collapsed."""
    collector = _TextCollector()
    collector.feed(value)
    collector.close()
    # unescape again: Azure sometimes double-escapes (``&amp;quot;``) inside already-escaped JSON strings
    raw = unescape("".join(collector.parts)).replace("\xa0", " ")
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in raw.split("\n"))
    return "\n".join(line for line in lines if line)


# --- dates -------------------------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<{g}>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<{g}>\d{{1,2}})(?:st|nd|rd|th)?"
_DATE_RE = re.compile(
    "|".join(
        [
            r"\b(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2})(?:T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\b",
            r"\b" + _MONTH.format(g="am") + r"\s+" + _DAY.format(g="ad") + r",?\s+(?P<ay>\d{4})\b",
            r"\b" + _DAY.format(g="bd") + r"\s+(?:of\s+)?" + _MONTH.format(g="bm") + r",?\s+(?P<by>\d{4})\b",
            r"\b(?P<um>\d{1,2})/(?P<ud>\d{1,2})/(?P<uy>\d{4})\b",
        ]
    ),
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Found:
    """A date found in text, with where it was."""

    value: date
    start: int
    end: int


def find_dates(text: str) -> list[Found]:
    """Every calendar date in ``text`` ("March 31, 2026", "31 March 2026", "2026-03-31", "03/31/2026")."""
    found: list[Found] = []
    for match in _DATE_RE.finditer(text):
        g = match.groupdict()
        try:
            if g["iy"]:
                value = date(int(g["iy"]), int(g["im"]), int(g["id"]))
            elif g["ay"]:
                value = date(int(g["ay"]), _MONTHS[g["am"].lower()], int(g["ad"]))
            elif g["by"]:
                value = date(int(g["by"]), _MONTHS[g["bm"].lower()], int(g["bd"]))
            else:
                # Service Health communications are written en-US, so 03/31/2026 is month/day
                value = date(int(g["uy"]), int(g["um"]), int(g["ud"]))
        except ValueError:
            continue  # "02/30/2026" and friends are not dates; skipping is kinder than failing the notice
        found.append(Found(value, match.start(), match.end()))
    return found


# --- models ------------------------------------------------------------------------------------------------

_SUFFIX = r"(?:[- ](?:turbo|mini|nano|instruct|16k|32k|realtime|audio|transcribe|search|chat|pro|preview))"
_NAME_RE = (
    r"(?P<name>"
    r"gpt[- ]?(?:3\.5|35|4\.1|4\.5|4o|4|5(?:\.\d)?|image-1)" + _SUFFIX + r"*"
    r"|o[1345]" + _SUFFIX + r"*"
    r"|text-embedding-(?:ada-002|3-small|3-large)"
    r"|(?:babbage|davinci)-002"
    r"|dall-e-[23]"
    r"|codex-mini"
    r")"
)
_VERSION = r"\d{4}-\d{2}-\d{2}|\d{4}-preview|turbo-\d{4}-\d{2}-\d{2}|vision-preview|\d{4}"
_VERSION_LIST = r"(?:{v})(?:\s*(?:,|and|or|&)\s*(?:{v}))*"
_SHORT_VERSION = r"\d{1,2}(?![\d-])"
_MENTION_RE = re.compile(
    r"(?<![\w.-])" + _NAME_RE + r"(?:"
    # gpt-4o (2024-05-13) / (version 2) / (versions 0613 and 1106-Preview)
    r"\s*\(\s*(?:versions?:?\s*)?(?P<paren>"
    + _VERSION_LIST.format(v=_VERSION + "|" + _SHORT_VERSION)
    + r")\s*\)"
    # gpt-4o version 2024-05-13 / gpt-4o-mini, version 2024-07-18 / model version: 2
    r"|,?\s+(?:model\s+)?versions?:?\s+(?P<word>"
    + _VERSION_LIST.format(v=_VERSION + "|" + _SHORT_VERSION)
    + r")"
    # gpt-35-turbo 0613 / gpt-4o 2024-05-13
    r"|\s+(?P<bare>(?:" + _VERSION + r"))(?![\w-])"
    # gpt-4o-2024-05-13 (OpenAI-style id)
    r"|-(?P<dash>\d{4}-\d{2}-\d{2})"
    r")?(?![\w])",
    re.IGNORECASE,
)
_SPLIT_VERSIONS = re.compile(r"\s*(?:,|\band\b|\bor\b|&)\s*", re.IGNORECASE)


def normalize_model_name(raw: str) -> str:
    """Azure's id of a model as people write it: "GPT-3.5 Turbo" -> "gpt-35-turbo", "GPT4o" -> "gpt-4o"."""
    name = re.sub(r"[\s_]+", "-", raw.strip().lower())
    name = re.sub(r"^gpt-?", "gpt-", name)
    return name.replace("gpt-3.5", "gpt-35")


def normalize_version(raw: str) -> str:
    """Azure's spelling of a version: "0125-preview" -> "0125-Preview"; dates and numbers stay as they are."""
    value = raw.strip()
    match = re.fullmatch(r"(\d{4})-preview", value, re.IGNORECASE)
    if match:
        return f"{match.group(1)}-Preview"
    return value.lower()


def _canonical(name: str, version: str | None) -> tuple[str, str | None]:
    # "GPT-4 Turbo (2024-04-09)" is catalog model gpt-4, version turbo-2024-04-09
    if name == "gpt-4-turbo" and version and re.fullmatch(r"\d{4}-\d{2}-\d{2}", version):
        return "gpt-4", f"turbo-{version}"
    if name == "gpt-4-turbo" and version and re.fullmatch(r"\d{4}-Preview", version):
        return "gpt-4", version
    return name, version


@dataclass(frozen=True)
class _Span:
    mention: ModelMention
    start: int
    end: int


def _mentions_with_spans(text: str) -> list[_Span]:
    spans: list[_Span] = []
    for match in _MENTION_RE.finditer(text):
        name = normalize_model_name(match.group("name"))
        raw_versions = (
            match.group("paren") or match.group("word") or match.group("bare") or match.group("dash")
        )
        versions: list[str | None] = (
            [normalize_version(v) for v in _SPLIT_VERSIONS.split(raw_versions) if v]
            if raw_versions
            else [None]
        )
        for version in versions:
            canon_name, canon_version = _canonical(name, version)
            spans.append(
                _Span(
                    ModelMention(name=canon_name, version=canon_version, text=match.group(0)), *match.span()
                )
            )
    return spans


_RETIRE_RE = re.compile(
    r"retir|deprecat|end of (?:life|support)|no longer (?:be )?(?:available|supported)|sunset|"
    r"discontinu|upgrade",
    re.IGNORECASE,
)
# "migrate to gpt-4.1", "replacement model: gpt-4o", "use gpt-4.1 instead": the model named is the target
_REPLACEMENT_BEFORE_RE = re.compile(
    r"(?:\b(?:migrate|upgrade|move|switch|transition|update)\w*\s+(?:\w+\s+){0,3}?to"
    r"|\breplace(?:d|ment)?(?:\s+model)?(?:\s+(?:with|by|is))?|\bsuccessor(?:\s+model)?(?:\s+is)?"
    r"|\buse|\bnewer\s+models?(?:\s+such\s+as)?)[\s:,]*(?:the\s+)?(?:newer\s+)?$",
    re.IGNORECASE,
)
_SENTENCE_RE = re.compile(r"(?<=[.;!?])\s+|\n+")


def mentions_retirement(text: str) -> bool:
    """Whether the text speaks of retirement, deprecation, end of life or a version upgrade."""
    return _RETIRE_RE.search(text) is not None


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_RE.split(text) if s.strip()]


def _date_for(index: int, spans: list[_Span], dates: list[Found], sentence: str) -> date | None:
    if not dates:
        return None
    if len(dates) == 1:
        return dates[0].value
    if len(spans) > 1:
        # "A retires on D1 and B on D2": each model takes the first date after it, before the next model
        after = [d for d in dates if d.start >= spans[index].end]
        if after:
            return after[0].value
        return dates[-1].value
    # one model, several dates: the date nearest a retirement word is the retirement date
    keyword_positions = [m.start() for m in _RETIRE_RE.finditer(sentence)]
    if not keyword_positions:
        return dates[-1].value
    return min(dates, key=lambda d: min(abs(d.start - k) for k in keyword_positions)).value


def extract_models(text: str) -> tuple[list[ModelMention], list[date]]:
    """The models the text names (deduplicated, in order) with their retirement dates, and all such dates.

    A date belongs to a model when both are in one sentence that speaks of retirement. A model whose sentence
    has no date takes the notice's retirement date when the notice states exactly one.
    """
    mentions: list[ModelMention] = []
    retirement_dates: list[date] = []
    for sentence in _sentences(text):
        spans = _mentions_with_spans(sentence)
        # version strings such as 2024-05-13 look like dates; a date inside a model mention is not a date
        dates = [
            d
            for d in find_dates(sentence)
            if not any(s.start <= d.start < s.end or s.start < d.end <= s.end for s in spans)
        ]
        speaks_of_retirement = mentions_retirement(sentence)
        if speaks_of_retirement:
            retirement_dates.extend(d.value for d in dates if d.value not in retirement_dates)
        for index, span in enumerate(spans):
            if _REPLACEMENT_BEFORE_RE.search(sentence[max(0, span.start - 60) : span.start]):
                mentions.append(span.mention.model_copy(update={"replacement": True}))
                continue
            when = _date_for(index, spans, dates, sentence) if speaks_of_retirement else None
            mentions.append(span.mention.model_copy(update={"retirement_date": when}))
    if len(retirement_dates) == 1:
        only = retirement_dates[0]
        mentions = [
            m if m.retirement_date or m.replacement else m.model_copy(update={"retirement_date": only})
            for m in mentions
        ]
    return _dedupe(mentions), retirement_dates


def _dedupe(mentions: list[ModelMention]) -> list[ModelMention]:
    # the same model is often named twice (title and body); keep the first, but prefer one that has a date
    by_ref: dict[tuple[str, str | None, bool], ModelMention] = {}
    for mention in mentions:
        key = (mention.name, mention.version, mention.replacement)
        existing = by_ref.get(key)
        if existing is None or (existing.retirement_date is None and mention.retirement_date is not None):
            by_ref[key] = mention
    # a bare "gpt-4o" adds nothing when "gpt-4o (2024-05-13)" is also named
    versioned = {(name, replacement) for name, version, replacement in by_ref if version}
    return [m for (name, version, repl), m in by_ref.items() if version or (name, repl) not in versioned]
