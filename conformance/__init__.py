"""Conformance kits: replay third-party test material against a running server and report.

Suites: ``xds`` (NIST XDS Toolkit testkit interpreter, DMP example exchanges, nist-schema-v3
validation of every response), ``fhir`` (ANS Mesures de santé 3.2.0 rules, the MES API Mesures
error catalogue, HL7 fhir-test-cases round-trips, CapabilityStatement against behaviour) and
``mail`` (MSSanté SMTP face). See ``docs/conformance.md``.
"""
