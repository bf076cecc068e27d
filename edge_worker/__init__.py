"""The edge: auth, validation, job state, uploads and the agent API (docs/ARCHITECTURE.md).

Importable under Pyodide: nothing here touches threads, sockets or the filesystem at import.
"""

__version__ = "0.1.0"
