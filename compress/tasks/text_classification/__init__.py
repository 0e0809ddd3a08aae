"""Text classification: sequence classifiers of any architecture the exporter handles."""
