"""`muniportal-ops import reads FILE`: meter reads from the city's reading system.

Format (docs/billing.md): one read per row. The whole file is checked before
anything is stored; any bad row rejects the file with every error listed. A
file is loaded in chunks (one unit of work each) on the stream
``readimport-<digest>``; importing the same file again skips what is already
recorded, so a load cut short is finished by running it again.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.billing import projections as p
from services.billing.csvfile import Errors, field, read_file, rows
from services.billing.domain.values import normalize_number, parse_date, parse_decimal, units_str
from services.billing.schedule import Schedule
from shared.events import NewEvent, validate_data
from shared.uow import ServiceStore

REQUIRED = ("account_number", "service_code", "meter_number", "read_date", "reading")
OPTIONAL = ("read_type", "previous_read_date", "previous_reading", "usage_units", "note")
READ_TYPES = {"actual": "actual", "a": "actual", "estimated": "estimated", "e": "estimated"}
CHUNK = 1000
ANALYZE_AFTER = 10_000  # rows: a load this big changes the planner's picture


def _read_type(value: str) -> str:
    try:
        return READ_TYPES[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not a read type (actual or estimated)") from None


def _reading(value: str) -> Decimal:
    number = parse_decimal(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _identifier(value: str) -> str:
    text = normalize_number(value)
    if len(text) > 30 or any(ch in text for ch in "\t\r\n"):
        raise ValueError(f"{value!r} is not an identifier (30 characters at most)")
    return text


def import_reads(
    store: ServiceStore,
    path: str | Path,
    *,
    schedule: Schedule,
    actor: str = "system",
    dry_run: bool = False,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Check every row, then record the new reads; returns counts."""
    filename = Path(path).name
    content, digest = read_file(path)
    import_id = f"reads-{digest}"
    parsed = rows(content, filename, required=REQUIRED, optional=OPTIONAL)
    today = today or schedule.today()
    errors = Errors()
    reads: list[dict[str, Any]] = []
    for line, row in parsed:
        read = {
            "line": line,
            "account_number": field(
                errors, line, row, "account_number", _identifier, required=True
            ),
            "service_code": field(errors, line, row, "service_code", _identifier, required=True),
            "meter_number": field(errors, line, row, "meter_number", _identifier, required=True),
            "read_date": field(errors, line, row, "read_date", parse_date, required=True),
            "reading": field(errors, line, row, "reading", _reading, required=True),
            "read_type": field(errors, line, row, "read_type", _read_type, required=False)
            or "actual",
            "previous_read_date": field(
                errors, line, row, "previous_read_date", parse_date, required=False
            ),
            "previous_reading": field(
                errors, line, row, "previous_reading", _reading, required=False
            ),
            "usage_units": field(errors, line, row, "usage_units", _reading, required=False),
            "note": row.get("note") or None,
        }
        if (read["previous_read_date"] is None) != (read["previous_reading"] is None):
            errors.add(
                line, "previous_reading", "give previous_read_date and previous_reading together"
            )
        if read["read_date"] is not None and read["read_date"] > today:
            errors.add(line, "read_date", f"{read['read_date']} is after today ({today})")
        if read["note"] and len(read["note"]) > 200:
            errors.add(line, "note", "must be at most 200 characters")
        reads.append(read)
    with store.read() as conn:
        on_record = _on_record(conn, {r["meter_number"] for r in reads if r["meter_number"]})
    new = _chain(reads, on_record, errors)
    if errors:
        raise errors.reject(filename, "rows are")
    result = {
        "file": filename,
        "import_id": import_id,
        "rows": len(reads),
        "recorded": len(new),
        "skipped": len(reads) - len(new),
        "dry_run": dry_run,
    }
    if dry_run or not new:
        return result
    stream = f"readimport-{digest}"
    for start in range(0, len(new), CHUNK):
        chunk = new[start : start + CHUNK]

        def work(uow: Any, chunk: list[dict[str, Any]] = chunk, first: bool = start == 0) -> None:
            version = uow.store.events.stream_version(stream, conn=uow.conn)
            data = {"import_id": import_id, "chunk": version + 1, "reads": chunk}
            if first:  # one validated chunk guards the shape; all chunks share it
                data = validate_data("MeterReadsRecorded", data)
            uow.append(stream, [NewEvent("MeterReadsRecorded", data)], version)

        store.run(work, actor=actor, correlation_id=f"import:{import_id}")
    if len(new) >= ANALYZE_AFTER:
        from services.billing.run import refresh_statistics

        refresh_statistics(store, (p.meter_reads,))
    return result


def _on_record(conn: Any, meters: set[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    r = p.meter_reads
    ordered = sorted(meters)
    for i in range(0, len(ordered), 900):
        chunk = ordered[i : i + 900]
        for row in conn.execute(
            sa.select(r).where(r.c.meter_number.in_(chunk)).order_by(r.c.read_date)
        ).mappings():
            out.setdefault(row["meter_number"], []).append(dict(row))
    return out


def _chain(
    reads: list[dict[str, Any]], on_record: dict[str, list[dict[str, Any]]], errors: Errors
) -> list[dict[str, Any]]:
    """Link each read to the meter's previous one; keep only reads not yet recorded."""
    by_meter: dict[str, list[dict[str, Any]]] = {}
    for read in reads:
        if read["meter_number"] and read["read_date"] and read["reading"] is not None:
            by_meter.setdefault(read["meter_number"], []).append(read)
    new: list[dict[str, Any]] = []
    for meter, items in by_meter.items():
        items.sort(key=lambda r: r["read_date"])
        known = {row["read_date"]: row for row in on_record.get(meter, [])}
        billed_through = max(
            (row["read_date"] for row in on_record.get(meter, []) if row["billed_bill_number"]),
            default=None,
        )
        previous: dict[str, Any] | None = None
        seen: dict[dt.date, int] = {}
        for read in items:
            line, date = read["line"], read["read_date"]
            if date in seen:
                errors.add(
                    line,
                    "read_date",
                    f"meter {meter} is read on {date} twice (also line {seen[date]})",
                )
                continue
            seen[date] = line
            existing = known.get(date)
            if existing is not None:
                if (
                    Decimal(existing["reading"]) == read["reading"]
                    and existing["account_number"] == read["account_number"]
                ):
                    previous = {"read_date": date, "reading": read["reading"]}
                    continue  # already recorded: importing again changes nothing
                errors.add(
                    line,
                    "reading",
                    f"meter {meter} already has a read on {date} "
                    f"({units_str(existing['reading'])} for account {existing['account_number']})",
                )
                continue
            if billed_through is not None and date <= billed_through:
                errors.add(
                    line, "read_date", f"meter {meter} is already billed through {billed_through}"
                )
                continue
            if read["previous_read_date"] is not None:
                prev_date, prev_reading = read["previous_read_date"], read["previous_reading"]
            else:
                earlier = previous or _last_before(on_record.get(meter, []), date)
                if earlier is None:
                    errors.add(
                        line,
                        "previous_reading",
                        f"meter {meter} has no earlier read on record; give previous_read_date "
                        "and previous_reading",
                    )
                    continue
                prev_date, prev_reading = earlier["read_date"], Decimal(earlier["reading"])
            if prev_date >= date:
                errors.add(
                    line,
                    "read_date",
                    f"{date} must be after the previous read date {prev_date}",
                )
                continue
            usage = read["usage_units"]
            if usage is None:
                usage = read["reading"] - prev_reading
                if usage < 0:
                    errors.add(
                        line,
                        "reading",
                        f"{units_str(read['reading'])} is less than the previous reading "
                        f"{units_str(prev_reading)} on {prev_date}; give usage_units if the "
                        "meter was replaced or rolled over",
                    )
                    continue
            previous = {"read_date": date, "reading": read["reading"]}
            new.append(
                {
                    "account_number": read["account_number"],
                    "service_code": read["service_code"],
                    "meter_number": meter,
                    "previous_read_date": prev_date.isoformat(),
                    "read_date": date.isoformat(),
                    "previous_reading": units_str(prev_reading),
                    "reading": units_str(read["reading"]),
                    "usage_units": units_str(usage),
                    "read_type": read["read_type"],
                    "note": read["note"],
                }
            )
    return new


def _last_before(rows: list[dict[str, Any]], date: dt.date) -> dict[str, Any] | None:
    earlier = [r for r in rows if r["read_date"] < date]
    return earlier[-1] if earlier else None
