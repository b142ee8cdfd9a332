"""The patient space (Mon espace santé) and everything in it: the domain and its storage.

No Flask, lxml, fhir.resources or SMTP here (a layering test enforces it): the faces translate
wire formats into calls of the use cases in this package.
"""
