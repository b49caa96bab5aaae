"""Security checks of SMTP servers: relay, STARTTLS injection, smuggling, AUTH abuse, limits."""
