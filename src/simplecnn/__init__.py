"""simplecnn: the package behind the study book "How simple can a CNN classifier be?".

Three layers, dependencies pointing one way (``tests/test_layout.py`` enforces it):

- ``simplecnn.core``: what every study builds on: paths, atomic files (``io``), the keyed
  artifact cache, data loading and archives, batch augmentation, model builders and their
  cost (``complexity``, ``memory``, ``receptive``), the one training loop and its named
  recipes, metrics and statistics, devices, results files, the book's plot style.
- ``simplecnn.studies``: one module (or package) per chapter, each with its methods and a
  ``headline()`` that states the chapter's headline numbers with their uncertainty.
- ``simplecnn.pipeline``: the registry of studies (upstream studies, headline keys), the
  papermill runner, sweeps, the Jupyter Book build and the command line.
"""

__version__ = "0.2.0"
