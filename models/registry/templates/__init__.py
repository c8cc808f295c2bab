"""Jinja templates of the model card (a package so that the wheel ships its *.html files)."""
