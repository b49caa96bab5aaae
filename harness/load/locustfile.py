"""The locustfile of mailharness's Locust users (harness/load/locust_users.py; docs/load.md,
"Distributed, with Locust"). One master and any number of workers, on one machine or several:

    locust -f harness/load/locustfile.py --master --headless --expect-workers 2 -u 6 -r 6 \\
        --run-time 60s --mailharness-target target.toml --mailharness-results load.json
    locust -f harness/load/locustfile.py --worker --master-host 127.0.0.1

Without --master or --worker, one process is both. Name classes after the file to run only
those (``SubmissionUser ReaderUser``); a run needs at least one reader user somewhere, or
nothing is found. ``ManagerUser`` is one per worker (its managers, ``--mailharness-managers``
per mailbox, work on the mailboxes together)."""

from harness.load.locust_users import InjectorUser, ManagerUser, ReaderUser, SubmissionUser

__all__ = ["InjectorUser", "ManagerUser", "ReaderUser", "SubmissionUser"]
