"""KPI overview (placeholder until the KPI page lands)."""

import streamlit as st

st.title("KPI overview")
