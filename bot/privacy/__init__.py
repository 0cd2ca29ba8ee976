"""Residents' personal information: consent, what is kept, and anonymisation."""
