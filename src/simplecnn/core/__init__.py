"""The core every study builds on: paths and artifact cache, data (loading, archives,
augmentation), models and their cost (MACs, memory, receptive fields), the one training
loop with its recipes, metrics, results files and the book's plot style.

Core modules import only each other (never a study or the pipeline).
"""
