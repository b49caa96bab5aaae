"""Shared fixtures of the project's own tests."""

# Import what the in-process pytester runs use before pytester snapshots sys.modules: a module
# first imported inside a run is dropped after it, and re-importing cryptography's bindings in a
# later run breaks trustme ("curve must be an EllipticCurve instance").
import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import trustme  # noqa: F401

import reference_agents.topology  # noqa: F401
import suites.flow  # noqa: F401

pytest_plugins = ["pytester"]
