"""Azure Service Health notices: parsing, classification, the webhook receiver, dedupe and dispatch.

The store-backed ``StoreNoticeLog`` lives in ``modelshift.notices.store`` (it imports the state store).
"""

from __future__ import annotations

from modelshift.notices.dispatch import (
    NOTICE_EVENT,
    Dispatcher,
    InProcessDispatcher,
    PrefectEventDispatcher,
    log_scan_request,
    notice_event,
)
from modelshift.notices.log import NoticeLog, NoticeStatus, Recorded
from modelshift.notices.model import (
    Classification,
    DispatchError,
    ModelMention,
    Notice,
    NoticeKind,
    NoticeParseError,
    NoticeProblem,
    NoticeSchema,
)
from modelshift.notices.parse import classify, parse_notice

__all__ = [
    "NOTICE_EVENT",
    "Classification",
    "DispatchError",
    "Dispatcher",
    "InProcessDispatcher",
    "ModelMention",
    "Notice",
    "NoticeKind",
    "NoticeLog",
    "NoticeParseError",
    "NoticeProblem",
    "NoticeSchema",
    "NoticeStatus",
    "PrefectEventDispatcher",
    "Recorded",
    "classify",
    "log_scan_request",
    "notice_event",
    "parse_notice",
]
