"""Quirks that only load finds: each breaks its requirement only when sessions or deliveries
run at the same time, so no single-session check meets it. `mailharness load` catches each
one (tests/integration/test_load_quirks.py)."""

from __future__ import annotations

from reference_agents.quirks.base import Quirk

LOAD_QUIRKS: tuple[Quirk, ...] = (
    Quirk("mda_racing_delivery_lost", "mda", ("HANDOFF-RESPONSIBILITY",),
          "a delivery that starts while another to the same mailbox is under way is reported "
          "delivered and never stored"),
    Quirk("mda_racing_delivery_twice", "mda", ("DELIVER-ONCE",),
          "a delivery that starts while another to the same mailbox is under way is stored "
          "twice"),
    Quirk("mda_racing_delivery_torn", "mda", ("DELIVER-INTACT",),
          "a delivery that starts while another to the same mailbox is under way loses the "
          "last line of its body"),
    Quirk("imap_expunge_unannounced", "imap", ("IMAP-SEQ-UID-STABLE",),
          "a message another session expunged leaves this session's view without an "
          "untagged EXPUNGE, and the numbers shift under it"),
    Quirk("imap_flags_lost_update", "imap", ("IMAP-SESSIONS-AGREE",),
          "STORE and FETCH's implicit \\Seen write the flags computed from the command's "
          "snapshot over what is there, so another session's change made meanwhile is lost"),
    Quirk("imap_modseq_race", "imap", ("IMAP-CONDSTORE-MODSEQ-UNIQUE",),
          "STORE takes its mod-sequence from the mailbox's version when the session last "
          "looked, so STOREs from two sessions get the same one"),
)
