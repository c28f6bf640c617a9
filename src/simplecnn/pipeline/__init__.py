"""What runs the book: the registry of studies (with their upstream studies and headline
keys), the papermill runner, sweeps, the book build and the command line. The pipeline
imports studies and core; nothing imports the pipeline."""
