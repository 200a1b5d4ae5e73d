"""Parsers for the delivered formats: every record is either a row or a reject with its reason."""

import csv
import datetime as dt
import decimal
import functools
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass, field

from customer_pipeline.ingest.formats import APP_EVENT_TYPES, KEY_MAX_LENGTH, CsvFamily

BOM = "\ufeff"
# what `surrogateescape` decodes an undecodable byte to
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
csv.field_size_limit(10_000_000)
# a NUL byte this early marks a binary file (rejected whole); a later one rejects its record only
BINARY_PROBE_BYTES = 65536
_NUL = "\x00"


@dataclass
class Reject:
    record_ref: str
    raw_record: str
    reason: str


@dataclass
class ParseResult:
    """Rows (tuples in the family's column order, with the record ref) and rejects of one file."""

    rows: list[tuple] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    file_error: str | None = None

    @property
    def rows_read(self) -> int:
        return len(self.rows) + len(self.rejects)


def _visible(text: str) -> str:
    """Undecodable bytes shown as escapes, so a reject can be read and stored."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def parse_timestamp(value: str | None) -> dt.datetime | None:
    """ISO 8601 with or without offset; a value without offset is taken as UTC. None if unparseable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def _is_int(value: str) -> bool:
    if value.isdecimal():  # digits only: int() accepts it (the common case, without an exception frame)
        return True
    try:
        int(value.strip())
    except ValueError:
        return False
    return True


def _is_decimal(value: str) -> bool:
    try:
        decimal.Decimal(value.strip())
    except decimal.InvalidOperation:
        return False
    return True


def _row_problem(family: CsvFamily, record: dict[str, str]) -> str | None:
    return _row_checker(family)(record.get)


@functools.cache
def _row_checker(family: CsvFamily):
    """`_row_problem` for one family as a closure over its typed columns; `get(col)` gives a value."""
    by_index = _row_checker_by_index(family)
    columns = family.columns

    def check(get) -> str | None:
        return by_index([get(c) for c in columns])

    return check


@functools.cache
def _row_checker_by_index(family: CsvFamily):
    """The same checks on a row given as a list in the family's column order (called once per row)."""
    pos = {c: i for i, c in enumerate(family.columns)}
    required = [(pos[c], c) for c in family.required]
    ints = [(pos[c], c) for c in family.ints]
    decimals = [(pos[c], c) for c in family.decimals]
    timestamps = [(pos[c], c) for c in family.timestamps]
    optional_timestamps = [(pos[c], c) for c in family.optional_timestamps]
    keys = [(pos[c], c) for c in family.keys]

    def check(values: list) -> str | None:
        for i, col in required:
            if not (values[i] or "").strip():
                return f"required field '{col}' is blank"
        for i, col in keys:
            if len((values[i] or "").strip()) > KEY_MAX_LENGTH:
                return f"key field '{col}' is longer than {KEY_MAX_LENGTH} characters ({len(values[i].strip())})"
        for i, col in ints:
            value = values[i] or ""
            if value.strip() and not _is_int(value):
                return f"field '{col}' is not an integer: {value!r}"
        for i, col in decimals:
            value = values[i] or ""
            if value.strip() and not _is_decimal(value):
                return f"field '{col}' is not a decimal: {value!r}"
        for i, col in timestamps:
            if parse_timestamp(values[i]) is None:
                return f"field '{col}' is not an ISO 8601 timestamp: {values[i]!r}"
        for i, col in optional_timestamps:
            value = values[i] or ""
            if value.strip() and parse_timestamp(value) is None:
                return f"field '{col}' is not an ISO 8601 timestamp: {value!r}"
        return None

    return check


def _csv_line(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return _visible(buf.getvalue())


def parse_csv(data: bytes, family: CsvFamily) -> ParseResult:
    """Parse one delivered CSV file of a family; a foreign or binary file is one file-level error."""
    result = ParseResult()
    if not data.strip():
        result.file_error = "empty file: no header row"
        return result
    if b"\x00" in data[:BINARY_PROBE_BYTES]:
        result.file_error = "binary content: NUL bytes in the file"
        return result
    has_nul = b"\x00" in data
    try:
        text = data.decode("utf-8")
        clean = True  # valid UTF-8 throughout: no record can hold an undecodable byte
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        clean = False
    if text.startswith(BOM):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader)
    except csv.Error as exc:
        result.file_error = f"unreadable header: {exc}"
        return result
    names = [h.strip().lower() for h in header]
    if sorted(names) != sorted(family.columns):
        missing = sorted(set(family.columns) - set(names))
        unexpected = sorted(set(names) - set(family.columns))
        result.file_error = (
            f"foreign header for {family.name}: missing {missing or 'nothing'}, "
            f"unexpected {unexpected or 'nothing'}"
        )
        return result
    order = [names.index(c) for c in family.columns]
    check = _row_checker_by_index(family)
    width = len(names)
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.rejects.append(Reject(str(start), "", f"CSV syntax error: {exc}"))
            continue
        if not values or (len(values) == 1 and not values[0].strip()):
            continue  # blank line: not a record
        ref = str(start)
        if len(values) != width:
            result.rejects.append(
                Reject(ref, _csv_line(values), f"wrong column count: {len(values)} instead of {width}")
            )
            continue
        if not clean and any(_ESCAPED_BYTE.search(v) for v in values):
            result.rejects.append(Reject(ref, _csv_line(values), "invalid UTF-8 bytes in the record"))
            continue
        if has_nul and any(_NUL in v for v in values):
            result.rejects.append(Reject(ref, _csv_line(values).replace(_NUL, "\\x00"), "NUL byte in the record"))
            continue
        ordered = [values[i] for i in order]
        problem = check(ordered)
        if problem:
            result.rejects.append(Reject(ref, _csv_line(values), problem))
            continue
        result.rows.append(tuple([v or None for v in ordered]))
        result.refs.append(ref)
    return result


# json.dumps(value, ensure_ascii=False, sort_keys=True) without building an encoder per call
_encode_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return _encode_json(value)
    text = str(value)
    return text if text != "" else None


def _event_problem(event) -> str | None:
    if not isinstance(event, dict):
        return "JSON value is not an object"
    if not isinstance(event.get("messageId"), (str, int)) or str(event.get("messageId")).strip() == "":
        return "required key 'messageId' missing or blank"
    if event.get("type") not in APP_EVENT_TYPES:
        return f"key 'type' missing or not one of {', '.join(APP_EVENT_TYPES)}: {event.get('type')!r}"
    if parse_timestamp(event.get("timestamp") if isinstance(event.get("timestamp"), str) else None) is None:
        return f"key 'timestamp' missing or not ISO 8601: {event.get('timestamp')!r}"
    if not (event.get("anonymousId") or event.get("userId")):
        return "neither 'anonymousId' nor 'userId' present"
    for key in ("messageId", "anonymousId", "userId", "previousId"):
        if len(str(event.get(key) or "").strip()) > KEY_MAX_LENGTH:
            return f"key '{key}' is longer than {KEY_MAX_LENGTH} characters"
    if event.get("traits") is not None and not isinstance(event.get("traits"), dict):
        return "key 'traits' is not an object"
    if event["type"] == "alias" and not (event.get("previousId") and event.get("userId")):
        return "alias event without 'previousId' and 'userId'"
    return None


def parse_jsonl(data: bytes, gzipped: bool) -> ParseResult:
    """Parse one app-events file (Segment spec) into event rows in `APP_EVENT_COLUMNS` order."""
    result = ParseResult()
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            result.file_error = f"corrupt gzip file: {exc}"
            return result
    if b"\x00" in data[:BINARY_PROBE_BYTES]:
        result.file_error = "binary content: NUL bytes in the file"
        return result
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for lineno, raw_line in enumerate(data.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        ref = str(lineno)
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            result.rejects.append(Reject(ref, _visible(raw_line.decode("utf-8", "surrogateescape")), "invalid UTF-8 bytes in the line"))
            continue
        if _NUL in line:
            result.rejects.append(Reject(ref, line.replace(_NUL, "\\x00"), "NUL byte in the line"))
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            result.rejects.append(Reject(ref, line, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        problem = _event_problem(event)
        if problem:
            result.rejects.append(Reject(ref, line, problem))
            continue
        result.rows.append(
            (
                _text(event.get("messageId")),
                event["type"],
                _text(event.get("anonymousId")),
                _text(event.get("userId")),
                _text(event.get("timestamp")),
                _text(event.get("event")),
                _text(event.get("previousId")),
                _text(event.get("traits")),
                _text(event.get("properties")),
                _text(event.get("context")),
            )
        )
        result.refs.append(ref)
    return result



def _readable_gzip(data: bytes) -> bytes:
    """What a gzip stream yields before it breaks (a truncated or corrupt file): the bytes decoded so far."""
    out = []
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(inflater.decompress(data))
            out.append(inflater.flush())
        except zlib.error:
            break
        data = inflater.unused_data  # a second member (concatenated gzip), if any
    return b"".join(out)


def count_records(data: bytes, name: str) -> int:
    """Records a rejected file held, as far as it can be read: JSON Lines count their non-blank lines
    (for a broken gzip, the complete lines decoded before the break), CSV files their records after
    the header. The figure for `meta.loaded_files.rows_read` of a file quarantined whole."""
    if name.endswith(".gz"):
        whole = True
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            data, whole = _readable_gzip(data), False
        if not whole and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]  # the line cut by the break is not an event
        name = name[:-3]
    if name.endswith(".jsonl") or name.endswith(".json"):
        return sum(1 for line in data.split(b"\n") if line.strip())
    text = data.decode("utf-8", "surrogateescape").replace(_NUL, "")
    if text.startswith(BOM):
        text = text[1:]
    records = 0
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        for values in reader:
            if values and not (len(values) == 1 and not values[0].strip()):
                records += 1
    except csv.Error:
        records += sum(1 for line in text[reader_position(text, reader.line_num):].splitlines() if line.strip())
    return max(0, records - 1)  # the header row is not a record


def reader_position(text: str, line_num: int) -> int:
    """Offset of the line after `line_num` physical lines (where a failed CSV reader stopped)."""
    pos = 0
    for _ in range(line_num):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return pos
