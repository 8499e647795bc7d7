"""The technician's tools: doctor, device tests, port checks (run by hand, never by a role)."""
