"""civmon dashboard: `streamlit run dashboard/app.py` (from the folder holding civmon.toml, or with $CIVMON_CONFIG).

It finds the database as the CLI does (monitor.config.load_settings: $CIVMON_CONFIG or ./civmon.toml, overridden
by CIVMON_DATABASE__URL) and reads it through a read-only engine; acknowledging an alert is its only write.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts dashboard/ on the path, not the project root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import queries, ui  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.errors import CivmonError  # noqa: E402
from monitor.store.db import display_url  # noqa: E402

# Not "pages/": Streamlit runs a pages/ folder beside the main script as old-style pages on a fresh server
# (a bookmarked /community would skip app.py and its navigation), so the page files live in views/.
PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="civmon", page_icon=":material/forum:", layout="wide")

pages = [
    st.Page(PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),  # served at /
    st.Page(PAGES / "community.py", title="Community", icon=":material/groups:", url_path="community"),
    st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page(PAGES / "thread.py", title="Thread", icon=":material/account_tree:", url_path="thread"),
    st.Page(PAGES / "alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"),
    st.Page(PAGES / "health.py", title="Data health", icon=":material/monitor_heart:", url_path="health"),
]
page = st.navigation(pages)

st.sidebar.markdown("### civmon")
settings, state = None, None
try:  # the page itself explains whatever is wrong here
    settings = load_settings()
    state = queries.store_state(settings.database.url)
except Exception:  # noqa: BLE001, S110
    pass
if settings is not None:
    st.sidebar.caption(f"Database: {ui.plain(display_url(settings.database.url))}")
if state is not None:
    ui.sidebar_as_of(state)
    if state.version:
        st.sidebar.caption(f"Scores of model {ui.plain(state.version)}")
if st.sidebar.button("Refresh data", icon=":material/refresh:", help="Numbers are cached for a minute; reload now."):
    queries.clear()

try:
    page.run()
except CivmonError as exc:  # pages handle their own; this is the last line of defence
    ui.show_error(exc)
