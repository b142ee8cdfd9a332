"""Helpers of the attack and fault suite (tests/security) and its scripts; never imported by
the server."""
