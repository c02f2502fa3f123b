"""Shared test settings."""

import os

from hypothesis import settings

# Timings on a loaded 2-core CI machine vary; correctness, not speed, is under test here.
settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
