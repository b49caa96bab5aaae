"""The stateful SMTP session model and replayable dialogues of the tricky cases."""
