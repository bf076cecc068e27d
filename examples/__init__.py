"""Example media made by the project itself (`python examples/make_examples.py`)."""
