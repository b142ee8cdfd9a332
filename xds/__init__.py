"""IHE XDS.b face of the DMP: SOAP 1.2 + MTOM/XOP, WS-Security/VIHF, ebRIM, transactions."""
