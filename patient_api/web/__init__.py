"""Routes of the patient API (``/api/patient``) and the support desk (``/api/admin``).

Every call is one ``Espace.operation`` with the right action (the enforcement point): the PDP
decides, the trace records success, failure and denial. The enrolment endpoints take the
one-time code instead of a token (the person has no account yet); everything else takes an
OAuth2 bearer token (``mes.tokens``). The OpenAPI document is at ``/api/patient/openapi.json``.

One blueprint per area (Flask nested blueprints under the ``patient_api`` face blueprint, which
holds the face's one error handler): ``enrolment`` (one-time code, public routes), ``space``
(status, closure, representatives), ``settings``, ``documents`` (documents, trace, prevention,
exports); the back office is the ``patient_admin`` blueprint (``admin``).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response

from espace.lifecycle import TooManyAttempts
from patient_api.http import handle_error
from patient_api.web import documents, enrolment, settings, space
from patient_api.web.admin import admin_bp
from patient_api.web.common import ADMIN, PATIENT

patient_bp = Blueprint("patient_api", __name__, url_prefix=PATIENT)
for _area in (enrolment, space, settings, documents):
    patient_bp.register_blueprint(_area.bp)


def handle_throttled(exc: TooManyAttempts) -> Response:
    """A throttled call: 429 Too Many Requests with Retry-After (RFC 6585 4, RFC 9110 10.2.3)."""
    response = handle_error(exc)
    response.status_code = 429
    response.headers["Retry-After"] = str(exc.verdict.retry_after)
    return response


for _bp in (patient_bp, admin_bp):
    _bp.register_error_handler(TooManyAttempts, handle_throttled)
    _bp.register_error_handler(Exception, handle_error)


def init_app(app: Flask) -> None:
    """Mount the patient API and the back office (one error handler for both)."""
    app.register_blueprint(patient_bp)
    app.register_blueprint(admin_bp)


__all__ = ["ADMIN", "PATIENT", "admin_bp", "init_app", "patient_bp"]
