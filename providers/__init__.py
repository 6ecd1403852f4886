"""Offer sources: the bundled snapshot, and (later) one live adapter module per cloud."""
