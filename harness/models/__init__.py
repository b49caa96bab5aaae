"""Models of protocol sessions: what the RFCs allow, checked against a live server."""
