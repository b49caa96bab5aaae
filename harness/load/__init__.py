"""Load that keeps checking correctness (`mailharness load`): simulated users on the blocking
clients, self-verifying messages, a ledger of what was accepted against what arrived."""
