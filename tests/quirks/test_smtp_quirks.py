"""Each SMTP quirk of the reference agents makes the suite test that checks its requirement fail."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
#: msa_nested_mail_accepted and msa_rcpt_before_mail_accepted are caught by the stateful model
#: (test_smtp_model_quirks.py).
CATCHES_SMTP: dict[str, str] = {
    # session and commands
    "msa_ehlo_no_domain_accepted": "smtp.test_session:test_smtp_ehlo_without_domain_is_501",
    "msa_helo_unsupported": "smtp.test_session:test_smtp_helo_is_supported",
    "msa_ehlo_keeps_transaction": "smtp.test_session:test_smtp_ehlo_mid_transaction_resets_it",
    "msa_help_wrong_code": "smtp.test_session:test_smtp_reply_codes_are_the_ones_listed",
    "msa_mail_without_argument_accepted": "smtp.test_session:test_smtp_malformed_arguments_get_501",
    "msa_rset_keeps_transaction": "smtp.test_session:test_smtp_rset_discards_the_transaction",
    "msa_rset_data_quit_argument_accepted": "smtp.test_session:test_smtp_rset_data_quit_with_argument_refused",
    "msa_noop_with_argument_refused": "smtp.test_session:test_smtp_noop_is_250",
    "mta_vrfy_syntax_only": "smtp.test_session:test_smtp_vrfy_does_not_confirm_unknown_users",
    "msa_unknown_command_accepted": "smtp.test_session:test_smtp_unknown_command_is_500",
    "msa_quit_keeps_connection": "smtp.test_session:test_smtp_quit_is_221_and_closes",
    "mta_refuse_null_sender": "smtp.test_session:test_smtp_null_reverse_path_is_accepted",
    "mta_no_bare_postmaster": "smtp.test_session:test_smtp_postmaster_is_accepted",
    # AUTH
    "msa_auth_plain_no_continuation": "smtp.test_auth:test_smtp_auth_plain_both_forms",
    "msa_auth_login_broken": "smtp.test_auth:test_smtp_auth_login",
    "msa_auth_cancel_535": "smtp.test_auth:test_smtp_auth_cancel_is_501",
    "msa_auth_bad_base64_535": "smtp.test_auth:test_smtp_auth_bad_base64_is_501",
    "msa_auth_unknown_mechanism_535": "smtp.test_auth:test_smtp_auth_unknown_mechanism_is_504",
    "msa_auth_twice": "smtp.test_auth:test_smtp_second_auth_is_503",
    "msa_auth_in_transaction": "smtp.test_auth:test_smtp_auth_during_transaction_is_503",
    # STARTTLS
    "msa_starttls_with_argument": "smtp.test_starttls:test_smtp_starttls_with_argument_is_501",
    "msa_keep_ehlo_after_starttls": "smtp.test_starttls:test_smtp_starttls_forgets_the_ehlo",
    "msa_starttls_reoffered": "smtp.test_starttls:test_smtp_starttls_not_offered_after_tls",
    "msa_starttls_twice": "smtp.test_starttls:test_smtp_second_starttls_is_refused",
    "mta_require_starttls": "smtp.test_starttls:test_smtp_mx_does_not_require_starttls",
    # extensions
    "msa_size_param_ignored": "smtp.test_extensions:test_smtp_mail_size_over_limit_is_552",
    "mta_pipelining_flush_input": "smtp.test_extensions:test_smtp_pipelined_group_answered_in_order",
    "msa_reject_body_8bitmime": "smtp.test_extensions:test_smtp_body_parameter_accepted",
    "msa_strip_8bit": "smtp.test_extensions:test_smtp_8bit_body_delivered_intact",
    "mta_smtputf8_advertised_unsupported": "smtp.test_extensions:test_smtp_utf8_sender_accepted_where_advertised",
    "mta_utf8_without_smtputf8": "smtp.test_extensions:test_smtp_utf8_address_not_relayed_to_a_hop_without_smtputf8",
    "mta_enhanced_class_mismatch": "smtp.test_extensions:test_smtp_enhanced_codes_match_the_reply_class",
    # limits
    "msa_long_command_line_closes": "smtp.test_limits:test_smtp_long_command_line_keeps_session",
    "msa_fold_long_lines": "smtp.test_limits:test_smtp_text_line_over_1000_refused_or_kept",
    "mta_rcpt_limit_50": "smtp.test_limits:test_smtp_100_recipients_accepted",
    "mta_rcpt_limit_550": "smtp.test_limits:test_smtp_recipients_over_limit_get_452",
    "mta_size_not_enforced": "smtp.test_limits:test_smtp_message_over_size_is_552",
    # security
    "msa_keep_plaintext_after_starttls": "security.test_smtp_starttls_injection:test_smtp_starttls_injection_submission",
    "mta_accept_bare_lf_end_of_data": "security.test_smtp_smuggling:test_smtp_smuggling_mx",
    "msa_accept_bare_lf_end_of_data": "security.test_smtp_smuggling:test_smtp_smuggling_submission",
    "mta_relay_percent_hack": "security.test_smtp_relay:test_smtp_no_relay_through_tricky_addresses_on_mx",
    "mta_relay_quoted_local_part": "security.test_smtp_relay:test_smtp_no_relay_through_tricky_addresses_on_mx",
    "msa_no_auth_throttle": "security.test_smtp_auth_abuse:test_smtp_auth_failures_are_throttled",
    "msa_auth_drop_after_first_failure": "security.test_smtp_auth_abuse:test_smtp_auth_not_dropped_before_three_failures",
    "msa_no_error_limit": "security.test_smtp_limits:test_smtp_too_many_errors_cut_off",
    "msa_error_limit_silent_close": "security.test_smtp_limits:test_smtp_cut_off_only_after_421",
    "mta_one_session_at_a_time": "security.test_smtp_limits:test_smtp_hostile_session_does_not_block_others",
}


@pytest.mark.parametrize("quirk", sorted(CATCHES_SMTP))
def test_smtp_test_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_SMTP[quirk], quirk)


#: Quirks whose home test is in suites/flow, also caught by suites/smtp or suites/security alone
#: (a user who runs only those folders still sees an open relay, and MAIL without AUTH).
ALSO_CAUGHT: list[tuple[str, str]] = [
    ("mta_open_relay", "security.test_smtp_relay:test_smtp_no_relay_through_tricky_addresses_on_mx"),
    ("msa_no_auth_required", "security.test_smtp_relay:test_smtp_no_relay_through_tricky_addresses_on_submission"),
    ("msa_no_auth_required", "smtp.test_auth:test_smtp_mail_before_auth_is_refused"),
]


@pytest.mark.parametrize(("quirk", "test"), ALSO_CAUGHT)
def test_smtp_and_security_folders_catch_it_alone(quirk: str, test: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, test, quirk)
