"""The pad device (叫号评价器): a window's keys and its 好差评 rating keys on one RS-485 bus."""
