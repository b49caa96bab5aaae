"""The reference IMAP server's SORT, THREAD and ESORT (RFC 5256, RFC 5267 §3), over a real
socket with imaplib: the answers, their errors, and the session going on after them."""

from __future__ import annotations

import imaplib

import pytest

from tests.unit.test_imapd import Running, base_config, srv

__all__ = ["base_config", "srv"]  # the fixtures, shared with test_imapd

REPLY = (b"From: Carol <carol@example.org>\r\nTo: alice@example.net\r\nSubject: Re: hello\r\n"
         b"Message-ID: <2@example.org>\r\nIn-Reply-To: <1@example.org>\r\n\r\nreply\r\n")


def _selected(srv: Running) -> imaplib.IMAP4:
    srv.store.append("alice", "INBOX", REPLY)
    m = srv.login()
    assert m.select("INBOX")[0] == "OK"
    return m


def test_capabilities(srv: Running) -> None:
    m = srv.login()
    try:
        for cap in ("SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT"):
            assert cap in m.capabilities
    finally:
        m.logout()


def test_sort_and_thread_answers(srv: Running) -> None:
    m = _selected(srv)
    try:
        assert m.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b"1 2"])
        assert m.sort("(REVERSE SIZE)", "US-ASCII", "ALL")[1] == [b"2 1"]
        assert m.sort("(FROM)", "UTF-8", "FROM", "carol") == ("OK", [b"2"])
        assert m.thread("REFERENCES", "UTF-8", "ALL") == ("OK", [b"(1 2)"])
        assert m.thread("ORDEREDSUBJECT", "UTF-8", "ALL") == ("OK", [b"(1 2)"])
        typ, data = m.uid("SORT", "(ARRIVAL)", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"1 2"]
        typ, _ = m._simple_command("SORT", "RETURN", "(MIN", "COUNT)", "(SIZE)", "UTF-8", "ALL")
        assert typ == "OK"
        assert m.untagged_responses.pop("ESEARCH")[0].endswith(b" MIN 1 COUNT 2")
    finally:
        m.logout()


def test_errors_and_the_session_goes_on(srv: Running) -> None:
    m = _selected(srv)
    try:
        typ, data = m.sort("(ARRIVAL)", "X-UNKNOWN", "ALL")
        assert typ == "NO" and data[0].startswith(b"[BADCHARSET (US-ASCII UTF-8)]")
        for bad in (("THREAD", "X-ALGORITHM", "UTF-8", "ALL"), ("SORT", "(NAME)", "UTF-8", "ALL"),
                    ("SORT", "(DATE)", "UTF-8")):
            with pytest.raises(imaplib.IMAP4.error):
                m._simple_command(*bad)
        assert m.noop()[0] == "OK"
    finally:
        m.logout()


def test_sort_needs_a_selected_mailbox(srv: Running) -> None:
    m = srv.login()
    try:
        with pytest.raises(imaplib.IMAP4.error):
            m.sort("(ARRIVAL)", "UTF-8", "ALL")
    finally:
        m.logout()
