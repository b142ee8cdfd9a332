"""XDS.b conformance: the NIST testkit interpreter, the DMP example replay, schema validation."""
