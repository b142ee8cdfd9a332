"""The patient-side HTTP JSON API (``/api/patient``) and the support desk's back office
(``/api/admin``): the lifecycle of the space and the patient's rights over it."""
