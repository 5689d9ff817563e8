"""AAC decoded by FAAD2 (Debian's libfaad2, which the Docker image and .ci/system-deps install) through ctypes: the
audio of Safari's MediaRecorder recordings and phones' voice memos (AAC-LC, HE-AAC, HE-AACv2 in MP4, parley/mp4.py).

    decoder = AacDecoder(track.config)       # the track's AudioSpecificConfig
    x = decoder.decode(packet)               # (T, C) float32 in [-1, 1] at decoder.rate

The output rate is the decoded stream's (HE-AAC's SBR doubles the core's: the first packet tells), known for sure only
after the first packet; the AudioSpecificConfig's rate is the guess before it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

_FLOAT = 4  # FAAD_FMT_FLOAT: samples as floats in [-1, 1]


class _Configuration(ctypes.Structure):
    _fields_ = [
        ("defObjectType", ctypes.c_ubyte),
        ("defSampleRate", ctypes.c_ulong),
        ("outputFormat", ctypes.c_ubyte),
        ("downMatrix", ctypes.c_ubyte),
        ("useOldADTSFormat", ctypes.c_ubyte),
        ("dontUpSampleImplicitSBR", ctypes.c_ubyte),
    ]


class _FrameInfo(ctypes.Structure):
    _fields_ = [
        ("bytesconsumed", ctypes.c_ulong),
        ("samples", ctypes.c_ulong),
        ("channels", ctypes.c_ubyte),
        ("error", ctypes.c_ubyte),
        ("samplerate", ctypes.c_ulong),
        ("sbr", ctypes.c_ubyte),
        ("object_type", ctypes.c_ubyte),
        ("header_type", ctypes.c_ubyte),
        ("num_front_channels", ctypes.c_ubyte),
        ("num_side_channels", ctypes.c_ubyte),
        ("num_back_channels", ctypes.c_ubyte),
        ("num_lfe_channels", ctypes.c_ubyte),
        ("channel_position", ctypes.c_ubyte * 64),
        ("ps", ctypes.c_ubyte),
    ]


INSTALL_HINT = "Debian: apt install libfaad2"


class AacDecoder:
    """One AAC stream's decoder (libfaad2), from its AudioSpecificConfig (MP4's esds).

    Raises (from the constructor):
        OSError: no libfaad2 on this system.
        ValueError: an AudioSpecificConfig libfaad2 does not take.
    """

    _lib: ctypes.CDLL | None = None

    def __init__(self, config: bytes) -> None:
        lib = self.library()
        self._handle = lib.NeAACDecOpen()
        if not self._handle:
            raise ValueError("NeAACDecOpen failed")
        conf = lib.NeAACDecGetCurrentConfiguration(self._handle).contents
        conf.outputFormat = _FLOAT
        conf.downMatrix = 1  # 5.1 and the like come out as stereo
        lib.NeAACDecSetConfiguration(self._handle, ctypes.byref(conf))
        rate, channels = ctypes.c_ulong(), ctypes.c_ubyte()
        buf = (ctypes.c_ubyte * len(config)).from_buffer_copy(config)
        if lib.NeAACDecInit2(self._handle, buf, len(config), ctypes.byref(rate), ctypes.byref(channels)) < 0:
            raise ValueError(f"an AAC configuration libfaad2 does not take ({config.hex()})")
        self.rate, self.channels = int(rate.value), int(channels.value)
        self._info = _FrameInfo()

    @classmethod
    def library(cls) -> ctypes.CDLL:
        """libfaad2, loaded once.

        Raises:
            OSError: not found.
        """
        if cls._lib is None:
            name = ctypes.util.find_library("faad") or "libfaad.so.2"
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                raise OSError(f"libfaad2 not found ({INSTALL_HINT})") from None
            lib.NeAACDecOpen.restype = ctypes.c_void_p
            lib.NeAACDecGetCurrentConfiguration.restype = ctypes.POINTER(_Configuration)
            lib.NeAACDecGetCurrentConfiguration.argtypes = [ctypes.c_void_p]
            lib.NeAACDecSetConfiguration.restype = ctypes.c_ubyte
            lib.NeAACDecSetConfiguration.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Configuration)]
            lib.NeAACDecInit2.restype = ctypes.c_byte
            lib.NeAACDecInit2.argtypes = [
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_ubyte),
                ctypes.c_ulong,
                ctypes.POINTER(ctypes.c_ulong),
                ctypes.POINTER(ctypes.c_ubyte),
            ]
            lib.NeAACDecDecode.restype = ctypes.c_void_p
            lib.NeAACDecDecode.argtypes = [ctypes.c_void_p, ctypes.POINTER(_FrameInfo), ctypes.c_char_p, ctypes.c_ulong]
            lib.NeAACDecGetErrorMessage.restype = ctypes.c_char_p
            lib.NeAACDecGetErrorMessage.argtypes = [ctypes.c_ubyte]
            lib.NeAACDecClose.argtypes = [ctypes.c_void_p]
            cls._lib = lib
        return cls._lib

    def decode(self, packet: bytes) -> np.ndarray:
        """One access unit's samples: `(T, C)` float32 in [-1, 1] (T = 0 for the first of some streams).

        Raises:
            ValueError: a packet libfaad2 cannot decode.
        """
        lib = self.library()
        out = lib.NeAACDecDecode(self._handle, ctypes.byref(self._info), packet, len(packet))
        info = self._info
        if info.error:
            raise ValueError(
                f"an AAC packet libfaad2 cannot decode: {lib.NeAACDecGetErrorMessage(info.error).decode()}"
            )
        channels = max(int(info.channels), 1)
        if info.samplerate:
            self.rate = int(info.samplerate)
        if not out or not info.samples:
            return np.zeros((0, channels), dtype=np.float32)
        n = int(info.samples)
        x = np.ctypeslib.as_array(ctypes.cast(out, ctypes.POINTER(ctypes.c_float)), shape=(n,))
        return x.reshape(n // channels, channels).copy()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle and self._lib is not None:
            self._lib.NeAACDecClose(handle)


def libfaad_available() -> bool:
    """Whether this system has libfaad2 (AAC in MP4 needs it)."""
    try:
        AacDecoder.library()
    except OSError:
        return False
    return True
