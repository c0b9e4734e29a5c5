"""The civmon dashboard (Streamlit): `streamlit run dashboard/app.py`. Reads only, except acknowledging alerts."""
