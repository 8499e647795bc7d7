"""The announcer: the call sentence spoken through the hall's speakers."""
