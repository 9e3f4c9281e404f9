pytest_plugins = ["contract_tests.plugin"]
