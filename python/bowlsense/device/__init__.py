"""Talking to the firmware: the serial protocol, a client, launchers for QEMU and the host build, and a
mirror of the device's event logic.

    from bowlsense.device import open_device, QemuDevice, HostDevice, DeviceClient
    with open_device() as dev:                 # QEMU mps2-an386 (built if needed); port="..." for a board
        print(dev.hello().board)

Modules:
    protocol  framing (COBS + CRC-16), message types, payload parsers (spec: firmware/proto/PROTOCOL.md)
    transport pyserial ports and socket:// URLs; pipes of a host-build process
    client    DeviceClient: hello, features, infer, stream, capture, stats, reset
    launch    QemuDevice / HostDevice / open_device: start a device, always stop it
    events    integer smoothing + hysteresis + privacy gate, bit-identical to the firmware
"""
from .client import DeviceClient, DeviceError, DeviceTimeout, StreamResult
from .launch import HostDevice, QemuDevice, open_device

__all__ = ["DeviceClient", "DeviceError", "DeviceTimeout", "HostDevice", "QemuDevice", "StreamResult",
           "open_device"]
