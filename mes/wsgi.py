"""WSGI entry point for gunicorn: ``gunicorn 'mes.wsgi:app'`` (configuration from MES_* env)."""

from mes.app import create_app

app = create_app()
