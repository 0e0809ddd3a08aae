"""report.json (the CI contract), report.md and plots, selection and the latency gate."""
