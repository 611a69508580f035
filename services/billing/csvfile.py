"""Reading operators' CSV files: exact columns, line numbers in every error."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.errors import InvalidInput

MAX_ERRORS_SHOWN = 100


class ImportRejected(InvalidInput):
    """A file with bad rows: every error is listed, and nothing was loaded."""

    def __str__(self) -> str:
        return self.detail

    def lines(self) -> list[str]:
        items = list(self.errors.items())
        out = [f"{where}: {message}" for where, message in items[:MAX_ERRORS_SHOWN]]
        if len(items) > MAX_ERRORS_SHOWN:
            out.append(f"... and {len(items) - MAX_ERRORS_SHOWN} more")
        return out


class Errors:
    """Errors keyed "line N, column", kept in file order."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.bad_lines: set[int] = set()

    def add(self, line: int, column: str | None, message: str) -> None:
        where = f"line {line}" + (f", {column}" if column else "")
        if where in self.items:
            self.items[where] += f"; {message}"
        else:
            self.items[where] = message
        self.bad_lines.add(line)

    def __bool__(self) -> bool:
        return bool(self.items)

    def reject(self, filename: str, what: str) -> ImportRejected:
        n = len(self.bad_lines)
        return ImportRejected(
            f"{filename}: {n} {what} not valid ({len(self.items)} errors); nothing was loaded",
            dict(self.items),
            code="import_rejected",
        )


def read_file(path: str | Path) -> tuple[bytes, str]:
    """The file's bytes and its import id (a digest of its content)."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {path}: {exc.strerror}", {"file": str(exc.strerror)}, code="unreadable"
        ) from None
    return content, hashlib.sha256(content).hexdigest()[:20]


def rows(
    content: bytes,
    filename: str,
    *,
    required: Sequence[str],
    optional: Sequence[str],
) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every non-empty row; a bad header rejects the whole file."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            f"{filename}: not UTF-8 text (byte {exc.start}); nothing was loaded",
            {"file": "must be UTF-8 text"},
            code="import_rejected",
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected(
            f"{filename}: the file is empty; nothing was loaded",
            {"file": "is empty"},
            code="import_rejected",
        ) from None
    names = [h.strip().lower() for h in header]
    problems: dict[str, str] = {}
    missing = [c for c in required if c not in names]
    if missing:
        problems["line 1"] = f"missing column(s): {', '.join(missing)}"
    unknown = [n for n in names if n and n not in required and n not in optional]
    if unknown:
        problems["line 1, header"] = (
            f"unknown column(s): {', '.join(unknown)} (known: {', '.join([*required, *optional])})"
        )
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        problems["line 1, columns"] = f"repeated column(s): {', '.join(dupes)}"
    if problems:
        raise ImportRejected(
            f"{filename}: bad header; nothing was loaded", problems, code="import_rejected"
        )
    out: list[tuple[int, dict[str, str]]] = []
    errors = Errors()
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(names):
                errors.add(line, None, f"has {len(values)} fields, the header has {len(names)}")
                continue
            out.append((line, {n: v.strip() for n, v in zip(names, values, strict=True) if n}))
    except csv.Error as exc:
        errors.add(reader.line_num, None, f"not valid CSV: {exc}")
    if errors:
        raise errors.reject(filename, "rows are")
    if not out:
        raise ImportRejected(
            f"{filename}: no rows after the header; nothing was loaded",
            {"file": "has no rows"},
            code="import_rejected",
        )
    return out


def field(
    errors: Errors, line: int, row: dict[str, str], name: str, parse: Any, *, required: bool
) -> Any:
    """Parse one column; a failure is recorded against the line and column."""
    raw = row.get(name, "")
    if raw == "":
        if required:
            errors.add(line, name, "is required")
        return None
    try:
        return parse(raw)
    except ValueError as exc:
        errors.add(line, name, str(exc))
        return None
