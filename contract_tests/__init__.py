"""Contract tests: run in-process against the sandbox by default, or over HTTP against any server
(``--base-url`` + credentials), addressing operations by catalogue id."""
