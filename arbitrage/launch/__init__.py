"""Launching runs: the Backend protocol, its SkyPilot and local-Ray implementations, and the runner."""
