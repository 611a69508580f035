"""Staff post, edit and retire announcements with muniportal-ops; the home page asks for the
active ones over RPC (`active_announcements(signed_in)`)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from zoneinfo import ZoneInfo

import pytest

from services.notifications.domain.announcement import Announcement
from shared.errors import InvalidInput
from shared.ops import cli
from shared.rpc import rpc_client

pytestmark = pytest.mark.integration

TODAY = dt.datetime.now(ZoneInfo("America/Los_Angeles")).date()  # the demo city's day
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def svc(start_notifications):
    return start_notifications("postgresql")


@pytest.fixture
def ops(svc, monkeypatch, capsys):
    monkeypatch.setenv("NOTIFICATIONS_DATABASE_URL", svc.database_url)

    def run(*argv: str) -> tuple[int, object, str]:
        capsys.readouterr()
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, (json.loads(out) if out.strip() and "--json" in argv else out), err

    return run


def active(amqp_uri, signed_in: bool) -> dict[str, dict]:
    with rpc_client(amqp_uri) as cluster:
        rows = cluster.notifications.active_announcements(signed_in)
    return {row["announcement_id"]: row for row in rows}


def post(ops, *extra: str, title: str | None = None) -> dict:
    title = title or f"Water main work {uuid.uuid4().hex[:6]}"
    status, row, err = ops(
        "announcements", "post", "--json", "--by", "pat", "--title", title, *extra
    )
    assert status == 0, err
    return row


def test_a_posted_announcement_shows_for_everyone_until_it_is_retired(svc, ops, amqp_uri):
    row = post(
        ops,
        "--body",
        "Crews will flush hydrants on Busch Road.\nExpect cloudy water.",
        "--starts-on",
        TODAY.isoformat(),
    )
    assert row["posted_by"] == "staff:pat" and row["audience"] == "all"
    shown = active(amqp_uri, signed_in=False)[row["announcement_id"]]
    assert shown == {
        "announcement_id": row["announcement_id"],
        "title": row["title"],
        "body": "Crews will flush hydrants on Busch Road.\nExpect cloudy water.",
        "starts_on": TODAY.isoformat(),
        "ends_on": None,
        "audience": "all",
    }
    assert row["announcement_id"] in active(amqp_uri, signed_in=True)

    status, retired, _ = ops("announcements", "retire", row["announcement_id"], "--json")
    assert status == 0 and retired["retired"] is True
    assert row["announcement_id"] not in active(amqp_uri, signed_in=False)
    status, listed, _ = ops("announcements", "list", "--all", "--json")
    assert {a["announcement_id"]: a["retired"] for a in listed}[row["announcement_id"]] is True
    status, listed, _ = ops("announcements", "list", "--json")
    assert row["announcement_id"] not in {a["announcement_id"] for a in listed}


def test_signed_in_only_announcements_are_hidden_from_guests(svc, ops, amqp_uri):
    row = post(ops, "--body", "Autopay is here.", "--audience", "signed_in")
    assert row["starts_on"] == TODAY.isoformat()  # default: from today, in the city
    assert row["announcement_id"] in active(amqp_uri, signed_in=True)
    assert row["announcement_id"] not in active(amqp_uri, signed_in=False)


def test_only_announcements_within_their_dates_are_active(svc, ops, amqp_uri):
    future = post(ops, "--body", "b", "--starts-on", (TODAY + DAY).isoformat())
    past = post(
        ops,
        "--body",
        "b",
        "--starts-on",
        (TODAY - 3 * DAY).isoformat(),
        "--ends-on",
        (TODAY - DAY).isoformat(),
    )
    last_day = post(
        ops, "--body", "b", "--starts-on", (TODAY - DAY).isoformat(), "--ends-on", TODAY.isoformat()
    )
    shown = active(amqp_uri, signed_in=True)
    assert future["announcement_id"] not in shown
    assert past["announcement_id"] not in shown
    assert last_day["announcement_id"] in shown


def test_staff_edit_an_announcement_and_the_home_page_follows(svc, ops, amqp_uri, tmp_path):
    row = post(ops, "--body", "Old text", "--starts-on", (TODAY + DAY).isoformat())
    body_file = tmp_path / "body.txt"
    body_file.write_text("Office closed on Thanksgiving Day.\n", encoding="utf-8")
    status, edited, err = ops(
        "announcements",
        "edit",
        row["announcement_id"],
        "--json",
        "--title",
        "Holiday hours",
        "--body-file",
        str(body_file),
        "--starts-on",
        TODAY.isoformat(),
    )
    assert status == 0, err
    assert (edited["title"], edited["body"]) == (
        "Holiday hours",
        "Office closed on Thanksgiving Day.",
    )
    assert active(amqp_uri, signed_in=False)[row["announcement_id"]]["title"] == "Holiday hours"
    status, edited, _ = ops(
        "announcements", "edit", row["announcement_id"], "--json", "--audience", "signed_in"
    )
    assert edited["audience"] == "signed_in"
    assert row["announcement_id"] not in active(amqp_uri, signed_in=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--title", "x" * 121, "--body", "b"], "title: must be at most 120 characters"),
        (["--title", "  ", "--body", "b"], "title: is required"),
        (
            ["--title", "t", "--body", "b", "--starts-on", "2026-13-01"],
            "--starts-on must be a date",
        ),
        (
            ["--title", "t", "--body", "b", "--starts-on", "2026-12-02", "--ends-on", "2026-12-01"],
            "ends_on: must be on or after starts_on",
        ),
        (["--title", "t"], "needs --body or --body-file"),
        (["--title", "t", "--body-file", "/nonexistent/file"], "--body-file /nonexistent/file"),
    ],
)
def test_bad_announcements_are_refused_in_one_line(svc, ops, argv, message):
    before = ops("announcements", "list", "--all", "--json")[1]
    status, _, err = ops("announcements", "post", *argv)
    assert status == 2
    assert message in err and err.count("\n") == 1
    assert ops("announcements", "list", "--all", "--json")[1] == before  # nothing recorded


def test_unknown_or_retired_announcements_cannot_be_changed(svc, ops):
    status, _, err = ops("announcements", "retire", str(uuid.uuid4()))
    assert status == 2 and "not found" in err.lower()
    status, _, err = ops("announcements", "edit", "nope", "--title", "x")
    assert status == 2 and "no announcement nope" in err
    row = post(ops, "--body", "b")
    ops("announcements", "retire", row["announcement_id"])
    status, _, err = ops("announcements", "edit", row["announcement_id"], "--title", "again")
    assert status == 2 and "retired" in err


def test_an_edit_that_changes_nothing_records_nothing():
    announcement = Announcement("a1")
    announcement.post(
        title="T", body="B", starts_on=TODAY, ends_on=None, audience="all", by="staff:pat"
    )
    assert announcement.edit(by="staff:pat", title="T") is False
    assert len(announcement.pending_events()) == 1
    with pytest.raises(InvalidInput) as caught:
        announcement.edit(by="staff:pat", colour="red")
    assert caught.value.errors == {"colour": "cannot be edited"}
