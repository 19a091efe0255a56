"""The dashboard's pages: one UI-only script each, run by the router in `dashboard/app.py`.

Not named `pages/`: Streamlit treats a `pages/` folder beside the main script as a legacy
(v1) multipage app and, on a session's first request for /simulate etc., runs that file directly,
skipping the router (no configuration, no sidebar)."""
