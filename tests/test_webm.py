"""WebM Opus, what browsers record (parley/webm.py): the Ogg pages' CRC against libogg's, Opus packet durations,
WebM built here from the packets of an Ogg Opus file (every lacing, with and without CodecPrivate) decoding to that
file's samples, the refusals; then headless Chromium's own MediaRecorder recording uploaded to both POST routes, as a
web app would send it."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile

from parley.audio import write_wav
from parley.formats import read_audio_channels
from parley.ogg import ogg_crc, opus_samples
from parley.webm import WebmReader, webm_to_ogg, write_webm
from parley.webm import _block as _parse_block
from tests._chromium import Chromium
from tests.test_server import Running
from tests.test_web import _require_chromium

RATE = 48000


def _ogg_opus(seconds: float = 1.0, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    x = np.stack([0.3 * np.sin(2 * np.pi * (300 + 200 * c) * t) for c in range(channels)], axis=1)
    buf = io.BytesIO()
    soundfile.write(buf, x.astype(np.float32), RATE, format="OGG", subtype="OPUS")
    return buf.getvalue()


def _pages(ogg: bytes) -> list[bytes]:
    pages, pos = [], 0
    while pos < len(ogg):
        n = ogg[pos + 26]
        length = 27 + n + sum(ogg[pos + 27 : pos + 27 + n])
        pages.append(ogg[pos : pos + length])
        pos += length
    return pages


def _packets(ogg: bytes) -> list[bytes]:
    """The Ogg stream's packets (lacing values joined across pages)."""
    packets, current = [], b""
    for page in _pages(ogg):
        n = page[26]
        lacing, pos = page[27 : 27 + n], 27 + n
        for value in lacing:
            current += page[pos : pos + value]
            pos += value
            if value < 255:
                packets.append(current)
                current = b""
    return packets


def _bitwise_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def test_the_pages_crc_is_liboggs() -> None:
    for page in _pages(_ogg_opus(0.3)):
        zeroed = page[:22] + bytes(4) + page[26:]
        assert struct.unpack("<I", page[22:26])[0] == ogg_crc(zeroed) == _bitwise_crc(zeroed)


def test_opus_packet_durations() -> None:
    assert opus_samples(bytes([(1 << 3) | 0])) == 960  # SILK 20 ms, one frame
    assert opus_samples(bytes([(3 << 3) | 1])) == 2 * 2880  # SILK 60 ms, two frames
    assert opus_samples(bytes([(13 << 3) | 0])) == 960  # hybrid 20 ms
    assert opus_samples(bytes([(16 << 3) | 0])) == 120  # CELT 2.5 ms
    assert opus_samples(bytes([(31 << 3) | 3, 5])) == 5 * 960  # CELT 20 ms, a count byte of 5
    ogg = _ogg_opus(1.0)
    head, _, *audio = _packets(ogg)
    pre_skip = struct.unpack("<H", head[10:12])[0]
    last_granule = struct.unpack("<q", _pages(ogg)[-1][6:14])[0]
    assert 0 <= sum(map(opus_samples, audio)) - last_granule < 960 * 3  # what the encoder counted, up to its end trim
    assert last_granule - pre_skip == RATE  # one second


def _id(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _size(n: int | None) -> bytes:
    if n is None:  # unknown size, as MediaRecorder writes its Segment and Clusters
        return b"\x01\xff\xff\xff\xff\xff\xff\xff"
    return (n | (1 << 56)).to_bytes(8, "big")


def _element(element: int, body: bytes = b"", unknown: bool = False) -> bytes:
    return _id(element) + _size(None if unknown else len(body)) + (b"" if unknown else body)


def _ebml_lace_sizes(sizes: list[int]) -> bytes:
    out = (sizes[0] | (1 << 14)).to_bytes(2, "big")  # 2-byte vint
    for previous, size in itertools.pairwise(sizes[:-1]):
        out += ((size - previous + (1 << 13) - 1) | (1 << 14)).to_bytes(2, "big")  # signed, 2 bytes
    return out


def _block(frames: list[bytes], lacing: str) -> bytes:
    header = b"\x81" + struct.pack(">h", 0)  # track 1, timecode 0
    if lacing == "none":
        return header + b"\x80" + frames[0]
    count = bytes([len(frames) - 1])
    if lacing == "xiph":
        sizes = b"".join(b"\xff" * (len(f) // 255) + bytes([len(f) % 255]) for f in frames[:-1])
        return header + b"\x82" + count + sizes + b"".join(frames)
    if lacing == "fixed":
        return header + b"\x84" + count + b"".join(frames)
    return header + b"\x86" + count + _ebml_lace_sizes([len(f) for f in frames]) + b"".join(frames)


def _webm(packets: list[bytes], head: bytes | None, lacing: str = "none", codec: str = "A_OPUS", delay_ns: int = 0):
    """A WebM file of one audio track holding `packets`, laid out as MediaRecorder lays it out (unknown sizes)."""
    entry = _element(0xD7, b"\x01") + _element(0x83, b"\x02") + _element(0x86, codec.encode())
    entry += _element(0x63A2, head) if head is not None else _element(0x56AA, delay_ns.to_bytes(4, "big"))
    entry += _element(0xE1, _element(0x9F, b"\x01"))
    header = _element(0x1A45DFA3, _element(0x4282, b"webm"))
    segment = _element(0x18538067, unknown=True) + _element(0x1549A966, _element(0x2AD7B1, b"\x0f\x42\x40"))
    segment += _element(0x1654AE6B, _element(0xAE, entry))
    segment += _element(0x1F43B675, unknown=True) + _element(0xE7, b"\x00")
    if lacing == "none":
        segment += b"".join(_element(0xA3, _block([p], "none")) for p in packets)
    elif lacing == "ebml":  # in BlockGroups, as Blocks
        groups = [packets[i : i + 3] for i in range(0, len(packets), 3)]
        segment += b"".join(_element(0xA0, _element(0xA1, _block(g, "ebml"))) for g in groups)
    else:
        groups = [packets[i : i + 4] for i in range(0, len(packets), 4)]
        segment += b"".join(_element(0xA3, _block(g, lacing)) for g in groups)
    return header + segment


def test_the_writer_lays_packets_out_as_mediarecorder_does() -> None:
    """`write_webm` (what `parley loadtest --encoding webm` sends): the reader takes its packets back one for one, at
    the offsets it returns, and the recording decodes to the Ogg file's samples."""
    ogg = _ogg_opus(1.0)
    head, _, *audio = _packets(ogg)
    data, ends = write_webm(head, audio)
    reader, got, start = WebmReader(), [], 0
    for end in ends:  # a chunk ending at each packet: that packet, whole, comes out of it
        got += reader.feed(data[start:end])
        start = end
        assert len(got) == ends.index(end) + 1
    assert got == audio and reader.head() == head
    want, _ = soundfile.read(io.BytesIO(ogg), dtype="float32")
    same, _ = soundfile.read(io.BytesIO(webm_to_ogg(data)), dtype="float32")
    assert 0 <= len(same) - len(want) < 960 and np.array_equal(same[: len(want)], want)  # no end trim in WebM


@pytest.mark.parametrize("lacing", ["none", "xiph", "ebml"])
def test_webm_decodes_to_the_ogg_files_samples(lacing: str) -> None:
    ogg = _ogg_opus(1.0)
    head, _, *audio = _packets(ogg)
    want, rate = soundfile.read(io.BytesIO(ogg), dtype="float32", always_2d=True)
    got, got_rate = read_audio_channels(io.BytesIO(_webm(audio, head, lacing)))
    assert got_rate == rate == RATE and got.shape[0] == 1
    n = want.shape[0]
    assert 0 <= got.shape[1] - n < 960 * 3  # the file's end trim is not in WebM's blocks
    assert np.array_equal(got[0, :n], want[:, 0])


def test_fixed_size_lacing_splits_equal_frames() -> None:
    frames = [bytes([i]) * 7 for i in range(3)]
    assert _parse_block(_block(frames, "fixed")) == (1, frames)
    assert _parse_block(_block(frames, "xiph")) == (1, frames)


def test_a_track_without_codec_private_gets_its_head_from_the_codec_delay() -> None:
    ogg = _ogg_opus(0.5)
    head, _, *audio = _packets(ogg)
    pre_skip = struct.unpack("<H", head[10:12])[0]
    want, _ = soundfile.read(io.BytesIO(ogg), dtype="float32", always_2d=True)
    got, _ = read_audio_channels(io.BytesIO(_webm(audio, None, delay_ns=round(pre_skip * 1e9 / RATE))))
    assert np.array_equal(got[0, : want.shape[0]], want[:, 0])
    ogg_again = webm_to_ogg(_webm(audio, None, delay_ns=round(pre_skip * 1e9 / RATE)))
    assert _packets(ogg_again)[0] == head[:10] + struct.pack("<H", pre_skip) + struct.pack("<I", RATE) + head[16:19]


def test_refusals_say_why() -> None:
    ogg = _ogg_opus(0.3)
    head, _, *audio = _packets(ogg)
    with pytest.raises(ValueError, match="WebM audio in A_VORBIS, not Opus"):
        webm_to_ogg(_webm(audio, head, codec="A_VORBIS"))
    with pytest.raises(ValueError, match=r"a WebM file Parley cannot read \(WebM audio in A_VORBIS.*ffmpeg"):
        read_audio_channels(io.BytesIO(_webm(audio, head, codec="A_VORBIS")))
    with pytest.raises(ValueError, match="no audio track"):
        webm_to_ogg(_element(0x1A45DFA3, b"") + _element(0x18538067, unknown=True))
    whole = _webm(audio, head)
    cut = whole[: len(whole) - len(audio[-1]) // 2]  # a recording cut off inside its last block
    got, _ = read_audio_channels(io.BytesIO(cut))
    full, _ = read_audio_channels(io.BytesIO(whole))
    assert 0 < full.shape[1] - got.shape[1] <= 960 * 2  # what came before the cut is kept


# ---- A browser's recording ----

RECORD_AND_UPLOAD = """(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const recorder = new MediaRecorder(stream, {mimeType: 'audio/webm;codecs=opus'});
  const chunks = [];
  recorder.ondataavailable = e => chunks.push(e.data);
  const stopped = new Promise(resolve => recorder.onstop = resolve);
  recorder.start(500);
  await new Promise(resolve => setTimeout(resolve, MILLISECONDS));
  recorder.stop();
  await stopped;
  stream.getTracks().forEach(t => t.stop());
  const blob = new Blob(chunks, {type: recorder.mimeType});
  const form = new FormData();
  form.append('file', blob, 'recording.webm');
  form.append('model', 'whisper-1');
  const openai = await fetch('/v1/audio/transcriptions', {method: 'POST', body: form});
  const plain = await fetch('/v1/transcribe', {method: 'POST', body: blob, headers: {'Content-Type': 'audio/webm'}});
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return {mime: recorder.mimeType, openai: [openai.status, await openai.json()],
          plain: [plain.status, await plain.json()], webm: btoa(binary)};
})()"""


def test_a_browsers_mediarecorder_upload_is_transcribed(
    en_open_server: Running, code_speech: tuple[np.ndarray, int], tmp_path: Path
) -> None:
    """Chromium records the fake microphone with MediaRecorder (WebM Opus, as Chrome, Edge and Firefox do) and the
    page uploads the blob as it is: OpenAI's form, and POST /v1/transcribe's body. Both transcribe it."""
    _require_chromium()
    x, rate = code_speech
    wav = tmp_path / "microphone.wav"
    write_wav(wav, x, rate)

    async def go() -> dict:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(en_open_server.http + "/")
            return await page.evaluate(
                RECORD_AND_UPLOAD.replace("MILLISECONDS", str(round(len(x) / rate * 1000) + 1200))
            )

    out = asyncio.run(go())
    assert out["mime"].startswith("audio/webm") and base64.b64decode(out["webm"])[:4] == b"\x1aE\xdf\xa3"
    status, body = out["openai"]
    from tests.test_opusstream import numerals_in_order  # it imports this module

    # a real-time recording: a glitch under load may repeat a word, so the numerals in order, not verbatim
    assert status == 200 and numerals_in_order("123456", body["text"]), body
    status, body = out["plain"]
    assert status == 200 and numerals_in_order("123456", body.get("display", body["text"])), body
