"""HTTP service (FastAPI) and command line for skulens."""
