"""OIP (KServe v2) REST adapter: wire types, tensor codecs, data plane and routes."""
