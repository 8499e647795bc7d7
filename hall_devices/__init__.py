"""hall_devices: the software that runs the devices of a government service hall (政务服务大厅)."""

__version__ = "0.1.0"
