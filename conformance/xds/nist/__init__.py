"""An interpreter for the NIST XDS Toolkit testkit (``testplan.xml`` files)."""
