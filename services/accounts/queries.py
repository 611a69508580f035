"""Reads on the accounts projections (plain SQLAlchemy Core on the live tables)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.accounts.domain.values import city_state_zip, one_line
from services.accounts.projections import (
    accounts,
    address_requests,
    customer_addresses,
    customers,
    links,
    preferences,
    remembered_values,
)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def account_row(conn: Connection, account_number: str) -> Any:
    return conn.execute(
        sa.select(accounts).where(accounts.c.account_number == account_number)
    ).first()


def customer_row(conn: Connection, customer_id: str) -> Any:
    return conn.execute(sa.select(customers).where(customers.c.customer_id == customer_id)).first()


def _address(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in ("line1", "line2", "city", "state", "zip")}


def address_of_record(conn: Connection, customer_id: str, today: dt.date) -> dict[str, Any] | None:
    """The mailing address in effect on `today`."""
    a = customer_addresses
    row = conn.execute(
        sa.select(a)
        .where(a.c.customer_id == customer_id, a.c.effective_date <= today)
        .order_by(a.c.effective_date.desc(), a.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        # Only future-dated addresses so far: the earliest one is the best we know.
        row = conn.execute(
            sa.select(a).where(a.c.customer_id == customer_id).order_by(a.c.effective_date, a.c.seq)
        ).first()
    return _address(row) if row is not None else None


def upcoming_address(conn: Connection, customer_id: str, today: dt.date) -> dict[str, Any] | None:
    """An approved address that takes effect after `today`, with its date."""
    a = customer_addresses
    row = conn.execute(
        sa.select(a)
        .where(a.c.customer_id == customer_id, a.c.effective_date > today)
        .order_by(a.c.effective_date.desc(), a.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {**_describe(_address(row)), "effective_date": row.effective_date.isoformat()}


def _describe(address: dict[str, Any]) -> dict[str, Any]:
    return {**address, "city_state_zip": city_state_zip(address), "text": one_line(address)}


def account_details(conn: Connection, account_number: str, today: dt.date) -> dict[str, Any] | None:
    row = account_row(conn, account_number)
    if row is None:
        return None
    customer = customer_row(conn, row.customer_id)
    mailing = address_of_record(conn, row.customer_id, today)
    service_place = {"city": row.service_city, "state": row.service_state, "zip": row.service_zip}
    return {
        "account_number": row.account_number,
        "customer_id": row.customer_id,
        "customer_name": customer.name if customer else None,
        "service_address": row.service_address,
        "service_city_state_zip": city_state_zip(service_place),
        "parcel_id": row.parcel_id,
        "status": row.status,
        "cycle": row.cycle,
        "mailing_address": _describe(mailing) if mailing else None,
        "upcoming_mailing_address": upcoming_address(conn, row.customer_id, today),
        "services": [
            {
                "service": s["name"],
                "code": s["code"],
                "start_date": s["start_date"],
                "stop_date": s.get("stop_date"),
                "status": s["status"],
                "meter_number": s.get("meter_number"),
                "meter_size": s.get("meter_size"),
            }
            for s in row.services
        ],
    }


def customer_info(conn: Connection, customer_id: str, today: dt.date) -> dict[str, Any] | None:
    customer = customer_row(conn, customer_id)
    if customer is None:
        return None
    mailing = address_of_record(conn, customer_id, today) or {}
    has_accounts = conn.execute(
        sa.select(sa.func.count())
        .select_from(accounts)
        .where(accounts.c.customer_id == customer_id)
    ).scalar_one()
    street = ", ".join(p for p in (mailing.get("line1"), mailing.get("line2")) if p)
    return {
        "customer_id": customer.customer_id,
        "name": customer.name,
        "address": street,
        "city_state_zip": city_state_zip(mailing) if mailing else "",
        "mailing_address": _describe(mailing) if mailing else None,
        "upcoming_mailing_address": upcoming_address(conn, customer_id, today),
        "kind": "utility" if has_accounts else "general",
    }


def has_account_link(conn: Connection, user_id: str, account_number: str) -> bool:
    return (
        conn.execute(
            sa.select(links.c.link_id)
            .where(
                links.c.user_id == user_id,
                links.c.type == "utility",
                links.c.account_number == account_number,
            )
            .limit(1)
        ).first()
        is not None
    )


def has_customer_link(conn: Connection, user_id: str, customer_id: str) -> bool:
    return (
        conn.execute(
            sa.select(links.c.link_id)
            .where(
                links.c.user_id == user_id,
                links.c.type == "customer",
                links.c.customer_id == customer_id,
            )
            .limit(1)
        ).first()
        is not None
    )


def may_see_customer(conn: Connection, user_id: str, customer_id: str) -> bool:
    """A customer link, or a utility link to one of the customer's accounts."""
    if has_customer_link(conn, user_id, customer_id):
        return True
    via_account = conn.execute(
        sa.select(links.c.link_id)
        .join(accounts, accounts.c.account_number == links.c.account_number)
        .where(
            links.c.user_id == user_id,
            links.c.type == "utility",
            accounts.c.customer_id == customer_id,
        )
        .limit(1)
    ).first()
    return via_account is not None


def list_links(conn: Connection, user_id: str, today: dt.date) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(
            links,
            customers.c.name,
            accounts.c.service_address,
            accounts.c.service_city,
            accounts.c.service_state,
            accounts.c.service_zip,
        )
        .select_from(
            links.outerjoin(customers, customers.c.customer_id == links.c.customer_id).outerjoin(
                accounts, accounts.c.account_number == links.c.account_number
            )
        )
        .where(links.c.user_id == user_id)
        .order_by(links.c.created_at, links.c.link_id)
    ).all()
    out = []
    for row in rows:
        if row.type == "customer":
            mailing = address_of_record(conn, row.customer_id, today)
            location = mailing["line1"] if mailing else None
        else:
            location = row.service_address
        out.append(
            {
                "link_id": row.link_id,
                "type": row.type,
                "account_number": row.account_number,
                "customer_id": row.customer_id,
                "name": row.name,
                "service_address": row.service_address if row.type == "utility" else None,
                "location": location,
                "via": row.via,
                "created_at": _iso(row.created_at),
            }
        )
    return out


def accessible(conn: Connection, user_id: str) -> dict[str, list[str]]:
    rows = conn.execute(
        sa.select(links.c.type, links.c.account_number, links.c.customer_id).where(
            links.c.user_id == user_id
        )
    ).all()
    return {
        "accounts": sorted({r.account_number for r in rows if r.type == "utility"}),
        "customers": sorted({r.customer_id for r in rows if r.type == "customer"}),
    }


def users_linked_to(conn: Connection, account_number: str) -> list[str]:
    rows = conn.execute(
        sa.select(links.c.user_id)
        .where(links.c.type == "utility", links.c.account_number == account_number)
        .distinct()
        .order_by(links.c.user_id)
    )
    return [r.user_id for r in rows]


def remembered(conn: Connection, user_id: str, module: str) -> dict[str, str] | None:
    row = conn.execute(
        sa.select(remembered_values.c.search_values).where(
            remembered_values.c.user_id == user_id, remembered_values.c.module == module
        )
    ).first()
    return dict(row.search_values) if row else None


def preferences_of(conn: Connection, account_number: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(preferences).where(preferences.c.account_number == account_number)
    ).first()
    if row is None:
        return None
    return {
        "paperless": bool(row.paperless),
        "email_notices": bool(row.email_notices),
        "updated_at": _iso(row.updated_at),
    }


def request_view(row: Any, *, for_user: str | None = None) -> dict[str, Any]:
    new_address = _describe(_address(row))
    view = {
        "request_id": row.request_id,
        "status": row.status,
        "account_number": row.account_number,
        "customer_id": row.customer_id,
        "customer_name": row.customer_name,
        "new_address": new_address,
        "current_address": _describe(row.current_address),
        "effective_date": row.effective_date.isoformat(),
        "requested_at": _iso(row.requested_at),
        "decided_at": _iso(row.decided_at),
        "reason": row.reason,
    }
    if for_user is not None:
        view["requested_by_you"] = row.user_id == for_user
    else:
        view["user_id"] = row.user_id
        view["decided_by"] = row.decided_by
    return view


def request_row(conn: Connection, request_id: str) -> Any:
    return conn.execute(
        sa.select(address_requests).where(address_requests.c.request_id == request_id)
    ).first()


def requests_for_customer(
    conn: Connection, customer_id: str, *, for_user: str | None = None
) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(address_requests)
        .where(address_requests.c.customer_id == customer_id)
        .order_by(address_requests.c.requested_at.desc(), address_requests.c.request_id)
    )
    return [request_view(r, for_user=for_user) for r in rows]


def list_requests(conn: Connection, status: str | None) -> list[dict[str, Any]]:
    query = sa.select(address_requests).order_by(
        address_requests.c.requested_at, address_requests.c.request_id
    )
    if status:
        query = query.where(address_requests.c.status == status)
    return [request_view(r) for r in conn.execute(query)]


def snapshots(
    conn: Connection, customer_ids: Iterable[str], account_numbers: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The last imported record of each customer and account, by stream id."""
    out: dict[str, dict[str, Any]] = {}
    ids = list(customer_ids)
    for i in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(customers).where(customers.c.customer_id.in_(ids[i : i + 500]))
        )
        for r in rows:
            out[f"customer-{r.customer_id}"] = {
                "customer_id": r.customer_id,
                "name": r.name,
                "mailing_address": r.imported_address,
                "email": r.email,
            }
    numbers = list(account_numbers)
    keys = ("account_number", "customer_id", "service_address", "service_city", "service_state")
    keys += ("service_zip", "parcel_id", "status", "cycle", "services")
    for i in range(0, len(numbers), 500):
        rows = conn.execute(
            sa.select(accounts).where(accounts.c.account_number.in_(numbers[i : i + 500]))
        )
        for r in rows:
            out[f"account-{r.account_number}"] = {k: getattr(r, k) for k in keys}
    return out


def account_links(conn: Connection, account_numbers: Iterable[str]) -> list[Any]:
    numbers = list(account_numbers)
    if not numbers:
        return []
    return conn.execute(
        sa.select(links.c.link_id, links.c.user_id, links.c.account_number).where(
            links.c.type == "utility", links.c.account_number.in_(numbers)
        )
    ).all()
