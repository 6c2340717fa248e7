"""The web dashboard's templates (Jinja2) and static assets; its routes live in ``server/ui``.

Vendored from npm (no CDN, works offline), with their licenses in ``static/LICENSES.txt``:
htmx 2.0.11 (``htmx.min.js``) and uPlot 1.6.32 (``uplot.min.js``, ``uplot.min.css``).
"""
