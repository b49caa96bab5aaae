"""IMAP protocol core (sans-IO): command grammar, response formatting, sequence sets, mailbox names."""
