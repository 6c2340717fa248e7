"""The Loopwright server: a native REST API (``/api/v1``), MLflow's REST API, auth.

``create_app(settings)`` builds the ASGI app; ``loopwright server`` runs it under uvicorn.
"""
