"""Residents' personal information: consent, what is kept, and anonymisation (on
request, 删除我的信息, and after its retention period)."""
