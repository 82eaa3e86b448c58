"""Servers under test that are not rtportal: the raw relay and the Channels peer."""
