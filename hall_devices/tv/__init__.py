"""The TV hall screen: a Qt window of recent calls and waiting per department."""
