"""Bundle pricing studio: page config, first-launch data, the shared sidebar, and navigation. Routing only."""

import streamlit as st

from engine import store
from pages._common import DATASET_KEY, ensure_default_datasets, get_connection

st.set_page_config(page_title="Bundle pricing studio", page_icon=":material/sell:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="KPI overview", icon=":material/monitoring:", default=True),
    st.Page("pages/bundles.py", title="Bundles", icon=":material/shopping_basket:"),
    st.Page("pages/pricing.py", title="Pricing studio", icon=":material/price_change:"),
    st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
    st.Page("pages/scenarios.py", title="Scenarios", icon=":material/bookmarks:"),
    st.Page("pages/customers.py", title="Customers", icon=":material/groups:"),
    st.Page("pages/tour.py", title="Guided tour", icon=":material/tour:"),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
]


def sidebar() -> None:
    names = [d.name for d in store.list_datasets(get_connection())]
    if names:
        current = st.session_state.get(DATASET_KEY)
        st.session_state[DATASET_KEY] = st.sidebar.selectbox(
            "Dataset", names, index=names.index(current) if current in names else 0
        )
    else:
        st.session_state.pop(DATASET_KEY, None)


navigation = st.navigation(PAGES)
ensure_default_datasets()
sidebar()
navigation.run()
