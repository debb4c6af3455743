"""import-sandbox: a local, stateful sandbox of four lead/contact import APIs."""

__version__ = "0.1.0"
