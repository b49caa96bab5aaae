"""Each IMAP quirk of the reference agents makes the suite test that checks its requirement fail."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_IMAP: dict[str, str] = {
    "imap_envelope_no_groups": "imap.test_imap_structure:test_corpus_envelope",
    "imap_bodystructure_lf_sizes": "imap.test_imap_structure:test_corpus_bodystructure",
    "imap_header_fields_case_sensitive": "imap.test_imap_structure:test_corpus_sections",
    "imap_rfc822_size_lf": "imap.test_imap_structure:test_corpus_rfc822_size",
    "imap_select_no_unseen": "imap.test_imap_mailboxes:test_imap4rev1_select_reports_the_first_unseen",
    "imap_search_address_raw": "imap.test_imap_search:test_imap_search_from_matches_the_address",
    "imap_status_recent_zero": "imap.test_imap_mailboxes:test_imap_status_recent_counts_new_messages",
    "imap_status_size_wrong": "imap.test_imap_mailboxes:test_imap_status_size_is_the_mailbox_size",
    "imap_close_examine_no": "imap.test_imap_expunge:test_imap_close_after_examine_removes_nothing",
    "imap_no_flags_for_new_keyword": "imap.test_imap_store:test_imap_new_keyword_gets_a_flags_response",
    "imap_lsub_no_noselect_parent": "imap.test_imap_mailboxes:test_imap_lsub_returns_the_unsubscribed_parent_as_noselect",
    "imap_capability_twice": "imap.test_imap_capability:test_imap_capability_lists_version",
    "imap_logout_no_bye": "imap.test_imap_capability:test_imap_logout_sends_bye",
    "imap_enable_no_enabled": "imap.test_imap_capability:test_imap_enable_answers_enabled",
    "imap_id_no_response": "imap.test_imap_capability:test_imap_id_answers",
    "imap_namespace_wrong_delimiter": "imap.test_imap_capability:test_imap_namespace_matches_list",
    "imap_sasl_ir_ignored": "imap.test_imap_auth:test_imap_authenticate_plain",
    "imap_auth_cancel_not_bad": "imap.test_imap_auth:test_imap_authenticate_cancel",
    "imap_no_auth_delay": "imap.test_imap_bad_input:test_imap_failed_logins_slowed",
    "imap_recent_never": "imap.test_imap_concurrency:test_imap_new_message_recent_in_exactly_one_session",
    "imap_examine_claims_recent": "imap.test_imap_concurrency:test_imap_examine_keeps_recent",
    "imap_highestmodseq_is_uidnext": "imap.test_imap_condstore:test_imap_highestmodseq_covers_every_message",
    "imap_modseq_frozen": "imap.test_imap_condstore:test_imap_store_raises_modseq",
    "imap_unchangedsince_ignored": "imap.test_imap_condstore:test_imap_conditional_store",
    "imap_changedsince_ignored": "imap.test_imap_condstore:test_imap_fetch_changedsince",
    "imap_search_modseq_no_suffix": "imap.test_imap_condstore:test_imap_search_modseq",
    "imap_qresync_without_enable": "imap.test_imap_qresync:test_imap_qresync_select_needs_enable",
    "imap_qresync_select_ignored": "imap.test_imap_qresync:test_imap_qresync_select_reports_changes",
    "imap_qresync_sends_expunge": "imap.test_imap_qresync:test_imap_qresync_expunge_is_vanished",
    "imap_qresync_fetch_vanished_ignored": "imap.test_imap_qresync:test_imap_uid_fetch_vanished",
    "imap_binary_not_decoded": "imap.test_imap_binary:test_imap_fetch_binary_decodes_parts",
    "imap_binary_size_encoded": "imap.test_imap_binary:test_imap_binary_size_is_decoded_size",
    "imap_unknown_cte_raw": "imap.test_imap_binary:test_imap_binary_unknown_encoding_is_refused",
    "imap_list_subscribed_ignored": "imap.test_imap_list_extended:test_imap_list_subscribed_selection",
    "imap_list_no_childinfo": "imap.test_imap_list_extended:test_imap_list_recursivematch_childinfo",
    "imap_list_status_missing": "imap.test_imap_list_extended:test_imap_list_return_status",
    "imap_create_existing_ok": "imap.test_imap_mailboxes:test_imap_create_then_list",
    "imap_delete_inbox_ok": "imap.test_imap_mailboxes:test_imap_delete",
    "imap_rename_loses_messages": "imap.test_imap_mailboxes:test_imap_rename_keeps_messages",
    "imap_rename_inbox_copies": "imap.test_imap_mailboxes:test_imap_rename_inbox_moves_messages",
    "imap_subscribe_forgotten": "imap.test_imap_mailboxes:test_imap_subscribe_and_lsub",
    "imap_list_no_delimiter": "imap.test_imap_mailboxes:test_imap_list_delimiter",
    "imap_list_percent_is_star": "imap.test_imap_mailboxes:test_imap_list_wildcards",
    "imap_inbox_case_sensitive": "imap.test_imap_mailboxes:test_imap_inbox_case_insensitive",
    "imap_special_use_missing": "imap.test_imap_mailboxes:test_imap_special_use_attributes",
    "imap_status_wrong_count": "imap.test_imap_mailboxes:test_imap_status_agrees_with_select",
    "imap_trycreate_missing": "imap.test_imap_mailboxes:test_imap_missing_mailbox_trycreate",
    "imap_append_autocreate": "imap.test_imap_mailboxes:test_imap_missing_mailbox_trycreate",
    "imap_append_drops_flags": "imap.test_imap_append:test_imap_append_stores_bytes_and_flags",
    "imap_append_ignores_date": "imap.test_imap_append:test_imap_append_sets_internaldate",
    "imap_literal_plus_refused": "imap.test_imap_append:test_imap_append_non_synchronizing_literal",
    "imap_append_no_appenduid": "imap.test_imap_append:test_imap_append_reports_appenduid",
    "imap_append_partial": "imap.test_imap_bad_input:test_imap_vanished_append_leaves_nothing",
    "imap_toobig_reads_literal": "imap.test_imap_bad_input:test_imap_huge_literal_refused_unread",
    "imap_envelope_no_subject": "imap.test_imap_fetch:test_imap_fetch_envelope",
    "imap_bodystructure_flat": "imap.test_imap_fetch:test_imap_fetch_bodystructure",
    "imap_section_text_with_header": "imap.test_imap_fetch:test_imap_fetch_sections",
    "imap_partial_off_by_one": "imap.test_imap_fetch:test_imap_fetch_partial",
    "imap_uid_fetch_no_uid": "imap.test_imap_fetch:test_imap_uid_fetch_includes_uid",
    "imap_fetch_unbalanced_paren": "imap.test_imap_fetch:test_imap_fetch_responses_follow_grammar",
    "imap_store_replace_adds": "imap.test_imap_store:test_imap_store_modes",
    "imap_store_silent_ignored": "imap.test_imap_store:test_imap_store_silent",
    "imap_examine_sets_seen": "imap.test_imap_store:test_imap_examine_is_read_only",
    "imap_search_case_sensitive": "imap.test_imap_search:test_imap_search_keys",
    "imap_search_utf8_refused": "imap.test_imap_search:test_imap_search_charset_utf8",
    "imap_esearch_as_search": "imap.test_imap_search:test_imap_esearch_in_rev2",
    "imap_copy_drops_flags": "imap.test_imap_copy_move:test_imap_copy_keeps_flags_and_date",
    "imap_copy_no_copyuid": "imap.test_imap_copy_move:test_imap_copy_reports_copyuid",
    "imap_move_no_expunge": "imap.test_imap_copy_move:test_imap_move_expunges_source",
    "imap_uid_expunge_all": "imap.test_imap_expunge:test_imap_uid_expunge_only_named",
    "imap_close_sends_expunge": "imap.test_imap_expunge:test_imap_close_expunges_silently",
    "imap_unselect_expunges": "imap.test_imap_expunge:test_imap_unselect_keeps_deleted",
    "imap_idle_slow": "imap.test_imap_idle:test_imap_idle_wakes_on_append",
    "imap_noop_no_updates": "imap.test_imap_concurrency:test_imap_noop_reports_other_sessions_append",
    "imap_expunge_during_search": "imap.test_imap_concurrency:test_imap_no_expunge_during_fetch_store_search",
    "imap_uidvalidity_changes": "imap.test_imap_concurrency:test_imap_uidvalidity_stable_and_uidnext_grows",
    "imap_mutf7_raw_utf8": "imap.test_imap_names:test_imap_modified_utf7_names",
    "imap_long_name_crash": "imap.test_imap_names:test_imap_hostile_names_keep_session",
    "imap_name_escapes": "imap.test_imap_names:test_imap_users_cannot_see_each_other",
    "imap_unknown_command_bye": "imap.test_imap_bad_input:test_imap_malformed_commands_get_bad",
    "imap_no_line_limit": "imap.test_imap_bad_input:test_imap_endless_line_cut_off",
    # -- extensions: SORT, THREAD and ESORT (RFC 5256, RFC 5267 §3) ------------------------------
    # (end of section)
    # -- extensions: ESEARCH, SEARCHRES, WITHIN, CONTEXT=SEARCH (RFC 4731, 5182, 5032, 5267) -----
    # (end of section)
    # -- extensions: MULTIAPPEND, CATENATE and mailbox-name encoding (RFC 3502, 4469, 3501 §5.1.3)
    # (end of section)
    # -- extensions: QUOTA, OBJECTID, PREVIEW, CREATE-SPECIAL-USE (RFC 9208, 8474, 8970, 6154) ---
    "imap_quotaroot_no_quota": "imap.test_imap_quota:test_imap_quota_roots",
    "imap_getquota_no_root": "imap.test_imap_quota:test_imap_quota_roots",
    "imap_quota_res_missing": "imap.test_imap_quota:test_imap_quota_roots",
    "imap_quota_counts_inbox_only": "imap.test_imap_quota:test_imap_quota_message_usage_is_exact",
    "imap_deleted_storage_all": "imap.test_imap_quota:test_imap_quota_status_deleted_storage",
    "imap_overquota_no_code": "imap.test_imap_quota:test_imap_quota_overquota_refuses_append_and_copy",
    "imap_create_no_mailboxid": "imap.test_imap_objectid:test_imap_objectid_mailboxid",
    "imap_select_no_mailboxid": "imap.test_imap_objectid:test_imap_objectid_mailboxid",
    "imap_status_no_mailboxid": "imap.test_imap_objectid:test_imap_objectid_mailboxid",
    "imap_mailboxid_shared": "imap.test_imap_objectid:test_imap_objectid_mailboxid",
    "imap_mailboxid_renamed_new": "imap.test_imap_objectid:test_imap_objectid_mailboxid_kept_by_rename",
    "imap_emailid_unstable": "imap.test_imap_objectid:test_imap_objectid_emailid_threadid",
    "imap_emailid_per_mailbox": "imap.test_imap_objectid:test_imap_objectid_emailid_kept_by_copy_and_move",
    "imap_threadid_is_emailid": "imap.test_imap_objectid:test_imap_objectid_emailid_threadid",
    "imap_search_objectid_none": "imap.test_imap_objectid:test_imap_objectid_search",
    "imap_create_use_ignored": "imap.test_imap_create_special_use:test_imap_create_with_special_use",
    "imap_useattr_creates": "imap.test_imap_create_special_use:test_imap_create_with_unassignable_use_refused",
    "imap_preview_nil": "imap.test_imap_preview:test_imap_preview_decoded_text",
    "imap_preview_too_long": "imap.test_imap_preview:test_imap_preview_length",
    "imap_preview_encoded": "imap.test_imap_preview:test_imap_preview_decoded_text",
    "imap_preview_markup": "imap.test_imap_preview:test_imap_preview_without_markup",
    "imap_preview_lazy_refused": "imap.test_imap_preview:test_imap_preview_lazy",
    # (end of section)
    # -- extensions: UTF8=ACCEPT, COMPRESS=DEFLATE, NOTIFY (RFC 6855, 4978, 5465) ----------------
    # (end of section)
}


@pytest.mark.parametrize("quirk", sorted(CATCHES_IMAP))
def test_imap_test_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_IMAP[quirk], quirk)
