"""City nodes: gRPC servers and clients over the civfed.v1 contracts."""
