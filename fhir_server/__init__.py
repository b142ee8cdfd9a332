"""The FHIR R4 face of Mon espace santé: measurements, profile, agenda, documents (MHD),
consents and the trace, for the patient side, paired apps and the system."""
