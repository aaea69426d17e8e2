"""Bundle pricing studio: page config, the shared sidebar, and navigation. Routing only."""

import streamlit as st

from pages._common import DATASET_KEY, get_connection
from engine import store

st.set_page_config(page_title="Bundle pricing studio", page_icon=":material/sell:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="KPI overview", icon=":material/monitoring:", default=True),
    st.Page("pages/bundles.py", title="Bundles", icon=":material/shopping_basket:"),
]


def sidebar() -> None:
    names = [d.name for d in store.list_datasets(get_connection())]
    if names:
        current = st.session_state.get(DATASET_KEY)
        st.session_state[DATASET_KEY] = st.sidebar.selectbox(
            "Dataset", names, index=names.index(current) if current in names else 0
        )


sidebar()
st.navigation(PAGES).run()
