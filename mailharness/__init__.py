"""The composition root: the `mailharness` command and the one place that starts an embedded
topology of the reference agents. Only this package imports every layer (harness, the
reference agents, reports); see docs/architecture.md."""
