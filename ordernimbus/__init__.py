"""OrderNimbus composition root: settings, tenancy, CLI and the wiring of backends."""

__version__ = "0.1.0"
