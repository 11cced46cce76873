"""The harness library: fake backends, service launchers and process samplers shared by tests, bench and reliability.

It imports svc (the code under test) and nothing from tests/, bench/ or reliability/, so those three import it
without a folder cycle.
"""
