"""Command and event handlers of the accounts service: load, call the domain, save.

Each handler takes the store (a nameko `WorkerStore` or the ops tool's
`ServiceStore`) and keyword arguments already shaped by `schemas.py`.
Handlers that answer "no account matches" commit the failed attempt first
(the throttle counts it) and raise afterwards, so the count survives the error.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from services.accounts import queries
from services.accounts.domain.identifiers import (
    name_key,
    parse_identifier,
    split_pasted_pair,
)
from services.accounts.domain.links import (
    LinkGuard,
    ThrottleLimits,
    UserLinks,
    account_not_linked,
    no_account_match,
)
from services.accounts.domain.preferences import DEFAULTS, AccountPreferences
from services.accounts.domain.registry import Customer, import_event
from services.accounts.domain.values import FieldError, date, mailing_address
from services.accounts.importer import ImportPlan
from shared.errors import InvalidInput, NotFound
from shared.events import NewEvent, validate_data

ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "state", "zip")
VERIFIED_VIA = ("registration", "invoice", "legacy", "staff")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clean_user_id(user_id: Any) -> str:
    """The canonical user ID: trimmed, lower case."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidInput("user_id: is required", {"user_id": "is required"})
    clean = user_id.strip().lower()
    if len(clean) > 100:
        raise InvalidInput(
            "user_id: must be at most 100 characters", {"user_id": "must be at most 100 characters"}
        )
    return clean


def _field_error(exc: FieldError) -> InvalidInput:
    return InvalidInput(str(exc), {exc.field: exc.message})


def _guard_key(user_id: str) -> str:
    return f"user:{user_id}"


# -- matching values to accounts ------------------------------------------------------------


def _utility_values(account_number: Any, customer_id: Any) -> tuple[str, str]:
    account_number, customer_id = split_pasted_pair(account_number, customer_id)
    errors: dict[str, str] = {}
    parsed: dict[str, str] = {}
    for field, value, label in (
        ("account_number", account_number, "account number"),
        ("customer_id", customer_id, "customer ID"),
    ):
        try:
            parsed[field] = parse_identifier(field, value, label=label)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors=errors)
    return parsed["account_number"], parsed["customer_id"]


def _find_utility(account_number: str, customer_id: str) -> Callable[[Any], Any]:
    def find(conn: Any) -> Any:
        row = queries.account_row(conn, account_number)
        # One answer whichever value is wrong: never say which.
        if row is None or row.customer_id != customer_id:
            return None
        return row

    return find


def _attempt(
    store: Any,
    *,
    guard_key: str | None,
    module: str,
    find: Callable[[Any], Any],
    on_match: Callable[[Any, Any], Any] | None = None,
    on_any: Callable[[Any], None] | None = None,
    limits: ThrottleLimits,
    now: dt.datetime,
    actor: str | None,
) -> Any:
    """Look values up under the throttle; commit a failure before answering "no match"."""

    if guard_key is None and on_match is None and on_any is None:
        # Nothing to count or record: a plain read, no writer lock.
        with store.read() as conn:
            if find(conn) is None:
                raise no_account_match()
        return None

    def work(uow: Any) -> tuple[bool, Any]:
        guard = uow.load(LinkGuard, guard_key) if guard_key else None
        if guard is not None:
            guard.ensure_allowed(now, limits)
        if on_any is not None:
            on_any(uow)
        found = find(uow.conn)
        if found is None:
            if guard is not None:
                guard.record_failure(now, module)
            return False, None
        return True, (on_match(uow, found) if on_match else found)

    # Concurrent attempts for one user conflict on the guard stream; each retry re-counts.
    matched, result = store.run(work, actor=actor, attempts=8)
    if not matched:
        raise no_account_match()
    return result


def check_utility_values(
    store: Any,
    *,
    account_number: Any,
    customer_id: Any,
    throttle_key: str | None = None,
    limits: ThrottleLimits,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> dict[str, str]:
    """Say whether an account number and customer ID belong to the same account."""
    account, customer = _utility_values(account_number, customer_id)
    key = None
    if throttle_key is not None:
        if not isinstance(throttle_key, str) or not 0 < len(throttle_key.strip()) <= 100:
            message = "must be text of 1 to 100 characters"
            raise InvalidInput(f"throttle_key: {message}", {"throttle_key": message})
        key = f"check:{throttle_key.strip().lower()}"
    _attempt(
        store,
        guard_key=key,
        module="utility",
        find=_find_utility(account, customer),
        limits=limits,
        now=now or utcnow(),
        actor=actor,
    )
    return {"account_number": account, "customer_id": customer}


def _link_on_match(user_id: str, via: str, now: dt.datetime) -> Callable[[Any, Any], Any]:
    def on_match(uow: Any, target: tuple[str, str | None, str]) -> str:
        link_type, account_number, customer_id = target
        links = uow.load(UserLinks, user_id)
        link = links.link(
            link_id=str(uuid.uuid4()),
            type=link_type,
            account_number=account_number,
            customer_id=customer_id,
            via=via,
            now=now,
        )
        return link["link_id"]

    return on_match


def _link_view(store: Any, user_id: str, link_id: str, now: dt.datetime) -> dict[str, Any]:
    with store.read() as conn:
        for view in queries.list_links(conn, user_id, now.date()):
            if view["link_id"] == link_id:
                return view
    raise NotFound("The link was removed meanwhile.", code="link_not_found")


def link_account(
    store: Any,
    *,
    user_id: str,
    link_type: str,
    account_number: Any = None,
    customer_id: Any = None,
    name: Any = None,
    limits: ThrottleLimits,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Link a utility account (account number + customer ID) or a general-billing customer."""
    user_id = clean_user_id(user_id)
    now = now or utcnow()
    if link_type == "utility":
        account, customer = _utility_values(account_number, customer_id)
        find_row = _find_utility(account, customer)

        def find(conn: Any) -> Any:
            row = find_row(conn)
            return ("utility", row.account_number, row.customer_id) if row else None

    else:
        find = _customer_finder(account_number, customer_id, name)
    link_id = _attempt(
        store,
        guard_key=_guard_key(user_id),
        module="utility" if link_type == "utility" else "general",
        find=find,
        on_match=_link_on_match(user_id, "link", now),
        limits=limits,
        now=now,
        actor=actor or f"user:{user_id}",
    )
    return _link_view(store, user_id, link_id, now)


def _customer_finder(account_number: Any, customer_id: Any, name: Any) -> Callable[[Any], Any]:
    errors: dict[str, str] = {}
    has_customer = customer_id is not None and str(customer_id).strip() != ""
    has_account = account_number is not None and str(account_number).strip() != ""
    customer = account = None
    if not has_customer and not has_account:
        errors["customer_id"] = "enter the customer ID or the account number"
    if has_customer:
        try:
            customer = parse_identifier("customer_id", customer_id, label="customer ID")
        except InvalidInput as exc:
            errors.update(exc.errors)
    if has_account:
        try:
            account = parse_identifier("account_number", account_number, label="account number")
        except InvalidInput as exc:
            errors.update(exc.errors)
    if not isinstance(name, str) or not name_key(name):
        errors["name"] = "enter the name exactly as it is printed on your bill"
    elif len(name) > 200:
        errors["name"] = "must be at most 200 characters"
    if errors:
        raise InvalidInput(errors=errors)
    wanted = name_key(name)

    def find(conn: Any) -> Any:
        owner = customer
        if account is not None:
            row = queries.account_row(conn, account)
            if row is None or (owner is not None and row.customer_id != owner):
                return None
            owner = row.customer_id
        found = queries.customer_row(conn, owner)
        # Whole-name comparison only: a part of the name never matches.
        if found is None or found.name_key != wanted:
            return None
        return ("customer", None, found.customer_id)

    return find


def search_utility(
    store: Any,
    *,
    user_id: str,
    account_number: Any,
    customer_id: Any,
    remember: bool,
    limits: ThrottleLimits,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """The utility search: a match links the account and lists it; values may be remembered."""
    user_id = clean_user_id(user_id)
    now = now or utcnow()
    account, customer = _utility_values(account_number, customer_id)
    values = {"account_number": account, "customer_id": customer}

    def on_any(uow: Any) -> None:
        if not remember:
            uow.load(UserLinks, user_id).forget("utility")

    def on_match(uow: Any, row: Any) -> dict[str, Any]:
        link_id = _link_on_match(user_id, "search", now)(
            uow, ("utility", row.account_number, row.customer_id)
        )
        if remember:
            uow.load(UserLinks, user_id).remember("utility", values)
        return {"link_id": link_id, "account_number": row.account_number}

    found = _attempt(
        store,
        guard_key=_guard_key(user_id),
        module="utility",
        find=_find_utility(account, customer),
        on_match=on_match,
        on_any=on_any,
        limits=limits,
        now=now,
        actor=actor or f"user:{user_id}",
    )
    with store.read() as conn:
        details = queries.account_details(conn, found["account_number"], now.date())
    result = {
        "customer_name": details["customer_name"],
        "service_address": details["service_address"],
        "service_city_state_zip": details["service_city_state_zip"],
        "account_number": details["account_number"],
        "customer_id": details["customer_id"],
        "parcel_id": details["parcel_id"],
        "status": details["status"],
        "link_id": found["link_id"],
    }
    return {"results": [result], "count": 1}


def link_verified(
    store: Any,
    *,
    user_id: str,
    kind: str,
    number: Any,
    via: str,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Link values another service has already verified (registration, an invoice search)."""
    user_id = clean_user_id(user_id)
    now = now or utcnow()
    if kind not in ("utility", "customer"):
        raise InvalidInput(
            "kind: must be utility or customer", {"kind": "must be utility or customer"}
        )
    if via not in VERIFIED_VIA:
        message = f"must be one of {', '.join(VERIFIED_VIA)}"
        raise InvalidInput(f"via: {message}", {"via": message})
    label = "account number" if kind == "utility" else "customer ID"
    clean = parse_identifier("number", number, label=label)

    def work(uow: Any) -> str:
        if kind == "utility":
            row = queries.account_row(uow.conn, clean)
            if row is None:
                raise NotFound(f"No utility account {clean}.", code="account_not_found")
            target = ("utility", row.account_number, row.customer_id)
        else:
            row = queries.customer_row(uow.conn, clean)
            if row is None:
                raise NotFound(f"No customer {clean}.", code="customer_not_found")
            target = ("customer", None, row.customer_id)
        return _link_on_match(user_id, via, now)(uow, target)

    link_id = store.run(work, actor=actor or "system")
    return _link_view(store, user_id, link_id, now)


def restore_legacy_links(
    uow: Any, *, user_id: str, account_numbers: Sequence[Any], now: dt.datetime
) -> list[str]:
    """Link again the accounts a re-registering user held before (identity's claim)."""
    user_id = clean_user_id(user_id)
    restored = []
    links = uow.load(UserLinks, user_id)
    for raw in account_numbers:
        try:
            number = parse_identifier("account_number", raw, label="account number")
        except InvalidInput:
            continue
        row = queries.account_row(uow.conn, number)
        if row is None:
            continue
        links.link(
            link_id=str(uuid.uuid4()),
            type="utility",
            account_number=row.account_number,
            customer_id=row.customer_id,
            via="legacy",
            now=now,
        )
        restored.append(row.account_number)
    return restored


def unlink(store: Any, *, user_id: str, link_id: Any, actor: str | None = None) -> dict[str, Any]:
    """Remove one of the user's links."""
    user_id = clean_user_id(user_id)
    if not isinstance(link_id, str) or not link_id.strip():
        raise InvalidInput("link_id: is required", {"link_id": "is required"})

    def work(uow: Any) -> None:
        uow.load(UserLinks, user_id).unlink(link_id.strip(), reason="user")

    store.run(work, actor=actor or f"user:{user_id}")
    return {}


# -- remembered values ----------------------------------------------------------------------

MODULE_VALUES = {
    "utility": ("account_number", "customer_id"),
    "general": ("customer_id", "bill_number"),
}


def check_module(module: Any) -> str:
    """The module name, or an error naming the field."""
    if module not in MODULE_VALUES:
        raise InvalidInput(
            "module: must be utility or general", {"module": "must be utility or general"}
        )
    return module


def remember_values(
    store: Any, *, user_id: str, module: str, values: Any, actor: str | None = None
) -> dict[str, Any]:
    """Remember a module's search values for the user's next visit."""
    user_id = clean_user_id(user_id)
    module = check_module(module)
    if not isinstance(values, dict):
        raise InvalidInput("values: must be an object", {"values": "must be an object"})
    clean: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in MODULE_VALUES[module]:
        try:
            clean[field] = parse_identifier(f"values.{field}", values.get(field), label=field)
        except InvalidInput as exc:
            errors.update(exc.errors)
    unknown = sorted(set(values) - set(MODULE_VALUES[module]))
    if unknown:
        errors[f"values.{unknown[0]}"] = "is not a search value of this module"
    if errors:
        raise InvalidInput(errors=errors)

    def work(uow: Any) -> None:
        uow.load(UserLinks, user_id).remember(module, clean)

    store.run(work, actor=actor or f"user:{user_id}")
    return {"values": clean}


def forget_values(
    store: Any, *, user_id: str, module: str, actor: str | None = None
) -> dict[str, Any]:
    """Forget a module's remembered search values."""
    user_id = clean_user_id(user_id)
    module = check_module(module)

    def work(uow: Any) -> None:
        uow.load(UserLinks, user_id).forget(module)

    store.run(work, actor=actor or f"user:{user_id}")
    return {"values": None}


# -- preferences ----------------------------------------------------------------------------


def _linked_account(uow_or_conn: Any, user_id: str, account_number: Any) -> Any:
    conn = getattr(uow_or_conn, "conn", uow_or_conn)
    try:
        number = parse_identifier("account_number", account_number, label="account number")
    except InvalidInput:
        raise account_not_linked() from None
    if not queries.has_account_link(conn, user_id, number):
        raise account_not_linked()
    row = queries.account_row(conn, number)
    if row is None:
        raise account_not_linked()
    return row


def set_preferences(
    store: Any,
    *,
    user_id: str,
    account_number: Any,
    paperless: Any,
    email_notices: Any,
    actor: str | None = None,
) -> dict[str, Any]:
    """Choose paperless or printed bills and email notices for a linked account."""
    user_id = clean_user_id(user_id)
    errors = {
        field: "must be true or false"
        for field, value in (("paperless", paperless), ("email_notices", email_notices))
        if not isinstance(value, bool)
    }
    if errors:
        raise InvalidInput(errors=errors)

    def work(uow: Any) -> dict[str, Any]:
        row = _linked_account(uow, user_id, account_number)
        prefs = uow.load(AccountPreferences, row.account_number)
        prefs.change(
            customer_id=row.customer_id,
            paperless=paperless,
            email_notices=email_notices,
            user_id=user_id,
        )
        return prefs.as_dict()

    return store.run(work, actor=actor or f"user:{user_id}")


def get_preferences(conn: Any, account_number: str) -> dict[str, Any]:
    """An account's preferences, or the defaults until someone chooses."""
    stored = queries.preferences_of(conn, account_number)
    if stored is None:
        return {**DEFAULTS, "updated_at": None, "chosen": False}
    return {**stored, "chosen": True}


# -- address change requests ----------------------------------------------------------------


def _new_request_id() -> str:
    return "AR-" + secrets.token_hex(5).upper()


def request_address_change(
    store: Any,
    *,
    user_id: str,
    account_number: Any,
    payload: dict[str, Any],
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """A resident asks for a new mailing address from an effective date."""
    user_id = clean_user_id(user_id)
    now = now or utcnow()
    errors: dict[str, str] = {}
    new_address: dict[str, Any] = {}
    effective: str | None = None
    try:
        new_address = mailing_address(payload, ADDRESS_FIELDS)  # type: ignore[arg-type]
    except FieldError as exc:
        errors.update(exc.errors)
    try:
        effective = date("effective_date", payload.get("effective_date"))
    except FieldError as exc:
        errors[exc.field] = exc.message
    if errors:
        raise InvalidInput(errors=errors)
    request_id = _new_request_id()

    def work(uow: Any) -> str:
        row = _linked_account(uow, user_id, account_number)
        customer = uow.get(Customer, row.customer_id)
        current = queries.address_of_record(uow.conn, row.customer_id, now.date())
        customer.request_address_change(
            request_id=request_id,
            account_number=row.account_number,
            user_id=user_id,
            current_address=current or new_address,
            new_address=new_address,
            effective_date=dt.date.fromisoformat(effective or ""),
            today=now.date(),
            now=now,
        )
        return row.customer_id

    store.run(work, actor=actor or f"user:{user_id}")
    with store.read() as conn:
        return queries.request_view(queries.request_row(conn, request_id), for_user=user_id)


def _request_customer(store: Any, request_id: Any) -> tuple[str, str]:
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidInput("request_id: is required", {"request_id": "is required"})
    clean = request_id.strip().upper()
    with store.read() as conn:
        row = queries.request_row(conn, clean)
    if row is None:
        raise NotFound(f"No address change request {clean}.", code="address_request_not_found")
    return clean, row.customer_id


def cancel_address_request(
    store: Any,
    *,
    user_id: str,
    request_id: Any,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """The resident withdraws a pending request for an account they hold a link to."""
    user_id = clean_user_id(user_id)
    now = now or utcnow()
    try:
        clean, customer_id = _request_customer(store, request_id)
    except NotFound:
        raise NotFound(
            "You have no such address change request.", code="address_request_not_found"
        ) from None

    def work(uow: Any) -> None:
        row = queries.request_row(uow.conn, clean)
        if not queries.has_account_link(uow.conn, user_id, row.account_number):
            raise NotFound(
                "You have no such address change request.", code="address_request_not_found"
            )
        uow.get(Customer, customer_id).cancel_address_change(clean, user_id=user_id, now=now)

    store.run(work, actor=actor or f"user:{user_id}")
    with store.read() as conn:
        return queries.request_view(queries.request_row(conn, clean), for_user=user_id)


def decide_address_request(
    store: Any,
    *,
    request_id: Any,
    approve: bool,
    staff: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Staff approve (the address of record changes) or reject (with a reason)."""
    now = now or utcnow()
    clean, customer_id = _request_customer(store, request_id)
    actor = staff if staff.startswith("staff:") else f"staff:{staff}"

    def work(uow: Any) -> None:
        customer = uow.get(Customer, customer_id)
        if approve:
            customer.approve_address_change(clean, staff=actor, now=now)
        else:
            customer.reject_address_change(clean, staff=actor, reason=reason or "", now=now)

    store.run(work, actor=actor)
    with store.read() as conn:
        return queries.request_view(queries.request_row(conn, clean))


# -- import ---------------------------------------------------------------------------------


class _DryRun(Exception):
    def __init__(self, counts: dict[str, Any]) -> None:
        super().__init__("dry run")
        self.counts = counts


def _zero() -> dict[str, Any]:
    return {
        "customers": {"new": 0, "changed": 0, "unchanged": 0},
        "accounts": {"new": 0, "changed": 0, "unchanged": 0},
        "links_removed": 0,
    }


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    for kind in ("customers", "accounts"):
        for key, value in part[kind].items():
            total[kind][key] += value
    total["links_removed"] += part["links_removed"]


def _batches(plan: ImportPlan, size: int) -> list[tuple[list[str], list[str]]]:
    """Customers with their accounts, a few hundred streams per unit of work."""
    by_customer: dict[str, list[str]] = {}
    for number, account in plan.accounts.items():
        by_customer.setdefault(account["customer_id"], []).append(number)
    batches: list[tuple[list[str], list[str]]] = []
    current: tuple[list[str], list[str]] = ([], [])
    for customer_id in plan.customers:
        current[0].append(customer_id)
        current[1].extend(by_customer.pop(customer_id, []))
        if len(current[0]) + len(current[1]) >= size:
            batches.append(current)
            current = ([], [])
    if current[0]:
        batches.append(current)
    return batches


def _import_batch(uow: Any, plan: ImportPlan, customer_ids: list[str], numbers: list[str]) -> dict:
    counts = _zero()
    stream_ids = [Customer.stream_id_for(c) for c in customer_ids] + [
        f"account-{n}" for n in numbers
    ]
    versions = uow.store.events.stream_versions(stream_ids, conn=uow.conn)
    last = queries.snapshots(uow.conn, customer_ids, numbers)
    appends: list[tuple[str, list[NewEvent], int]] = []
    reassigned: list[str] = []
    items = [("Customer", Customer.stream_id_for(c), plan.customers[c]) for c in customer_ids] + [
        ("Account", f"account-{n}", plan.accounts[n]) for n in numbers
    ]
    for kind, stream_id, snapshot in items:
        version = versions.get(stream_id, 0)
        event = import_event(kind, snapshot, last.get(stream_id), version > 0)
        bucket = counts["customers" if kind == "Customer" else "accounts"]
        if event is None:
            bucket["unchanged"] += 1
            continue
        event_type, data = event
        bucket["new" if event_type.endswith("Imported") else "changed"] += 1
        appends.append(
            (stream_id, [NewEvent(event_type, validate_data(event_type, data))], version)
        )
        if event_type == "AccountChanged" and "customer_id" in data["changed"]:
            reassigned.append(data["account_number"])
    if appends:
        uow.append_many(appends)
    # An account that now belongs to another customer is no longer the linked users' business.
    for link in queries.account_links(uow.conn, reassigned):
        uow.load(UserLinks, link.user_id).unlink(link.link_id, reason="account_reassigned")
        counts["links_removed"] += 1
    return counts


def import_registry(
    store: Any,
    plan: ImportPlan,
    *,
    all_or_nothing: bool = False,
    dry_run: bool = False,
    batch_streams: int = 300,
    actor: str = "system",
) -> dict[str, Any]:
    """Load an import plan: new and changed records become events; unchanged ones nothing."""
    result: dict[str, Any] = {
        "file": plan.filename,
        "rows": plan.rows,
        "bad_rows": len(plan.errors),
        "rows_held_back": len(plan.held_back),
        "errors": plan.report(),
        "held_back": [p.render(plan.filename) for p in plan.held_back],
        "loaded": False,
        "dry_run": dry_run,
        **_zero(),
    }
    if plan.errors and all_or_nothing:
        return result
    batches = _batches(plan, batch_streams)
    if dry_run or all_or_nothing:
        # One transaction: all of it commits, or (dry run) none of it does.
        def everything(uow: Any) -> dict[str, Any]:
            total = _zero()
            for customer_ids, numbers in batches:
                _add(total, _import_batch(uow, plan, customer_ids, numbers))
            if dry_run:
                raise _DryRun(total)
            return total

        try:
            _add(result, store.run(everything, actor=actor))
            result["loaded"] = True
        except _DryRun as done:
            _add(result, done.counts)
        return result
    for customer_ids, numbers in batches:
        part = store.run(
            lambda uow, c=customer_ids, n=numbers: _import_batch(uow, plan, c, n), actor=actor
        )
        _add(result, part)
    result["loaded"] = True
    return result
