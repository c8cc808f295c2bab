"""OrderNimbus package."""
