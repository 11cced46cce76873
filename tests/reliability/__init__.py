"""Reliability and security: keeps serving, loses nothing under load, faults and bad input (issue 7)."""
