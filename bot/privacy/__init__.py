"""Personal information: anonymised on request (删除我的信息) and after its retention period."""
