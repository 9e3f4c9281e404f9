"""Provider-agnostic machinery. Nothing in here imports a provider."""
