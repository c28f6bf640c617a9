"""One module (or package) per chapter of the book. A study imports the core and, where
its chapter builds on another's results, that study; never the pipeline."""
