"""FHIR conformance: ANS Mesures de santé rules, MES API errors, round-trips, capabilities."""
