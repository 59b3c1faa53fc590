"""cellgate's HTTP gateway: FastAPI app, Nova views, microversions and request handling."""
