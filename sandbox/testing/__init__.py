"""Test support for people testing their own clients against the sandbox: the pytest plugin (fixtures
``sandbox_server`` and ``sandbox``), Hypothesis strategies generated from the response schemas, and the transports
and control client the contract tests use."""
