"""Each flow quirk of the reference agents makes the flow test that checks its requirement fail
(or, for a MAY, shows it not offered: a MAY is never red)."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_FLOW: dict[str, str] = {
    "msa_greeting_554": "flow.test_1_submit:test_greeting_is_220",
    "msa_ehlo_bad_continuation": "flow.test_1_submit:test_ehlo_lists_extensions",
    "msa_ehlo_refused": "flow.test_1_submit:test_ehlo_lists_extensions",
    "msa_no_starttls": "flow.test_1_submit:test_starttls_then_ehlo_again",
    "msa_implicit_tls_plaintext": "flow.test_1_submit:test_submissions_starts_with_tls",
    "msa_no_auth_required": "flow.test_2_authenticate:test_mail_without_auth_is_refused",
    "msa_accept_any_password": "flow.test_2_authenticate:test_wrong_password_is_refused",
    "msa_auth_before_tls": "flow.test_2_authenticate:test_no_plaintext_auth_before_tls",
    "msa_any_sender": "flow.test_2_authenticate:test_cannot_send_as_someone_else",
    "msa_no_date": "flow.test_3_handoff:test_date_added_when_missing",
    "msa_no_message_id": "flow.test_3_handoff:test_message_id_added_when_missing",
    "mta_lose_after_accept": "flow.test_3_handoff:test_accepted_message_is_delivered",
    "mta_mx_reverse_preference": "flow.test_4_resolve:test_lowest_preference_first_and_fallback",
    "mta_no_implicit_mx": "flow.test_4_resolve:test_a_record_is_implicit_mx",
    "mta_no_retry": "flow.test_5_transfer:test_temporary_failure_is_retried",
    "mta_no_bounce": "flow.test_5_transfer:test_permanent_failure_bounces_to_sender",
    "mta_bounce_with_sender": "flow.test_5_transfer:test_permanent_failure_bounces_to_sender",
    "mta_reject_local": "flow.test_6_route:test_mail_for_local_user_is_accepted",
    "mta_open_relay": "flow.test_6_route:test_relay_for_foreign_domain_is_refused",
    "mta_accept_unknown_user": "flow.test_6_route:test_unknown_local_user_is_refused",
    "mta_no_received": "flow.test_6_route:test_received_trace_is_prepended",
    "mta_no_dot_stuffing": "flow.test_7_deliver:test_dot_lines_survive",
    "mda_no_spam_filter": "flow.test_7_deliver:test_gtube_is_filed_as_spam",
    "imap_no_starttls": "flow.test_8_login:test_starttls",
    "imap_login_in_clear": "flow.test_8_login:test_no_clear_text_login",
    "imap_login_broken": "flow.test_8_login:test_login_with_valid_credentials",
    "imap_accept_any_password": "flow.test_8_login:test_login_with_wrong_password",
    "imap_uidnext_off_by_one": "flow.test_9_read:test_select_reports_mailbox_state",
    "imap_wrong_size": "flow.test_9_read:test_fetch_returns_message_and_size",
    "imap_peek_sets_seen": "flow.test_9_read:test_peek_does_not_set_seen",
    "imap_store_silent": "flow.test_9_read:test_store_adds_flag_and_reports_it",
    "imap_expunge_ignored": "flow.test_9_read:test_expunge_removes_deleted_only",
    "imap_idle_no_notify": "flow.test_9_read:test_idle_reports_new_mail",
}


@pytest.mark.parametrize("quirk", sorted(CATCHES_FLOW))
def test_flow_test_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_FLOW[quirk], quirk)
