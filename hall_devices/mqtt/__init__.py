"""The MQTT adapter: our own types over paho (bus.py), request/reply (requests.py), following the
coordinator's published layout (layout_follow.py)."""
