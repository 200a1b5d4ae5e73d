"""One alert per incident: an incident opens when its condition starts and closes when the condition clears.

The open incidents live in the sensor's cursor (JSON), so a condition that holds on every tick alerts once.
"""

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from customer_pipeline.alerts.messages import Alert

CURSOR_VERSION = 1


@dataclass(frozen=True)
class Observation:
    """What a sensor saw for one incident key: failing (send `alert` if not open yet) or clear (send `alert`,
    the "resolved" message, if open). A key a tick has no evidence for is simply not observed."""

    key: str
    failing: bool
    alert: Alert


def reconcile(
    open_incidents: Mapping[str, dict], observations: Iterable[Observation], now: dt.datetime | None = None
) -> tuple[list[Alert], dict[str, dict]]:
    """The alerts to send and the incidents open afterwards."""
    now = now or dt.datetime.now(dt.UTC)
    still_open = dict(open_incidents)
    to_send: list[Alert] = []
    for obs in observations:
        if obs.failing and obs.key not in still_open:
            still_open[obs.key] = {"since": now.isoformat(timespec="seconds"), "title": obs.alert.title}
            to_send.append(obs.alert)
        elif not obs.failing and obs.key in still_open:
            opened = still_open.pop(obs.key)
            to_send.append(obs.alert.with_details(open_since=opened.get("since")))
    return to_send, still_open


@dataclass
class CursorState:
    """What a sensor keeps between ticks: its open incidents, and since when it has been watching (UTC)."""

    open: dict[str, dict]
    watching_since: dt.datetime


def load_cursor(cursor: str | None, now: dt.datetime | None = None) -> CursorState:
    """The state kept in a cursor; a new or unreadable cursor starts watching now, with nothing open."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        data = json.loads(cursor) if cursor else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        return CursorState({}, now)
    since = data.get("watching_since")
    return CursorState(dict(data.get("open", {})), dt.datetime.fromisoformat(since) if since else now)


def dump_cursor(state: CursorState) -> str:
    return json.dumps({"version": CURSOR_VERSION, "watching_since": state.watching_since.isoformat(timespec="seconds"),
                       "open": dict(sorted(state.open.items()))})
