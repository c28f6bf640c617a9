"""Drop repeated inline scripts from every page.

sphinx-thebe adds its configuration script (``const THEBE_JS_URL = …``) on each
``env-before-read-docs`` event, which fires more than once in a Jupyter Book 1.x build; the
second copy (with filename "" instead of None) makes browsers throw "Identifier 'THEBE_JS_URL' has already been declared".
"""

from __future__ import annotations


def _dedupe(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", None) or "", str(getattr(script, "attributes", {}).get("body", "")))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    if "script_files" in context:
        context["script_files"][:] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)  # after the themes have added theirs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
