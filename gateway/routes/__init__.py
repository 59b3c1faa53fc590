"""HTTP routers: thin, they parse, call :mod:`gateway.listing`, and render views."""
