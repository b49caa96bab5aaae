"""SMTP conformance in depth: session, commands, AUTH, STARTTLS, extensions, limits."""
