"""The tasks behind ``canns-stdp demo``: pattern detection and digit classification."""
