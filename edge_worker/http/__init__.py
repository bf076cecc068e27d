"""The HTTP layer: error envelopes, request observability, dependency providers and the
parsing of request bodies into the use cases' plain inputs."""
