import argparse
import dataclasses
from pathlib import Path

import pytest

from server.endpoint import EndpointConfig
from server.settings import DEFAULT_BUNDLES, Settings, add_arguments


def parse(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return Settings.from_env_and_args(p.parse_args(argv), env or {})


def test_defaults() -> None:
    s = parse([])
    assert s == Settings()
    assert (s.host, s.port, s.bundles, s.providers) == ("127.0.0.1", 8000, DEFAULT_BUNDLES, "auto")
    assert s.endpoint_config() == EndpointConfig()
    assert not s.auth_required and s.api_keys == ()


def test_flags_beat_environment_beats_defaults() -> None:
    env = {"PARLEY_PORT": "9000", "PARLEY_MAX_BATCH": "16", "PARLEY_API_KEYS": "a, b", "PARLEY_ENDPOINTING": "off"}
    s = parse(["--max-batch", "64", "--providers", "CPU"], env)
    assert (s.port, s.max_batch, s.providers) == (9000, 64, "cpu")
    assert s.api_keys == ("a", "b") and s.auth_required
    assert not s.endpointing and not s.endpoint_config().enabled
    s = parse(["--api-key", "c", "--endpointing", "--rule2-min-trailing-silence", "0.8"], env)
    assert s.api_keys == ("c",) and s.endpointing
    assert s.endpoint_config().rule2.min_trailing_silence == 0.8


def test_unrelated_parley_variables_are_ignored() -> None:
    assert parse([], {"PARLEY_TEST_CHECKPOINT": "x", "PARLEY_HOST": ""}) == Settings()


def test_api_keys_file_adds_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nk1\n\n  k2  \n")
    s = parse(["--api-keys-file", str(keys)], {"PARLEY_API_KEYS": "k0"})
    assert s.api_keys == ("k0", "k1", "k2")
    assert "k1" not in repr(s)


def test_origins() -> None:
    s = Settings(allowed_origins=["https://example.org/"])
    assert s.origin_allowed("https://example.org") and s.origin_allowed(None)
    assert not s.origin_allowed("https://evil.example")
    assert Settings().origin_allowed("https://anything.example")
    assert Settings(allowed_origins=("*",)).origin_allowed("https://anything.example")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PARLEY_PORT": "eighty"}, "PARLEY_PORT='eighty': expected an integer"),
        ({"PARLEY_MAX_WAIT_MS": "soon"}, "expected a number"),
        ({"PARLEY_ENDPOINTING": "maybe"}, "PARLEY_ENDPOINTING"),
        ({"PARLEY_PORT": "70000"}, "port"),
        ({"PARLEY_PROVIDERS": "tpu"}, "providers"),
        ({"PARLEY_MAX_BATCH": "0"}, "max_batch"),
        ({"PARLEY_MAX_CONNECTIONS": "0"}, "max_connections"),
        ({"PARLEY_MAX_STREAMS_PER_KEY": "-1"}, "max_streams_per_key"),
        ({"PARLEY_REDACT": "maybe"}, "PARLEY_REDACT"),
        ({"PARLEY_PROFANITY_FILTER": "maybe"}, "PARLEY_PROFANITY_FILTER"),
        ({"PARLEY_PROFANITY_WORDS": "/nonexistent-words"}, "profanity_words"),
        ({"PARLEY_MAX_MESSAGE_BYTES": "10"}, "max_message_bytes"),
        ({"PARLEY_IDLE_TIMEOUT_S": "0"}, "idle_timeout_s"),
        ({"PARLEY_RULE1_MIN_TRAILING_SILENCE": "-1"}, "rule1"),
        ({"PARLEY_RULE3_MIN_UTTERANCE_LENGTH": "0"}, "rule3"),
        ({"PARLEY_LOG_LEVEL": "loud"}, "log_level"),
        ({"PARLEY_SSL_CERTFILE": "/nonexistent.pem"}, "give both or neither"),
        ({"PARLEY_SSL_CERTFILE": "/nonexistent.pem", "PARLEY_SSL_KEYFILE": "/nonexistent.key"}, "no such file"),
        ({"PARLEY_ALLOWED_ORIGINS": "example.org"}, "allowed_origins"),
        ({"PARLEY_API_KEYS_FILE": "/nonexistent-keys"}, "api_keys_file"),
        ({"PARLEY_RESPELL_VERIFY_THRESHOLD": "0"}, "respell_verify_threshold"),
        ({"PARLEY_RESPELL_VERIFY_MARGIN": "-1"}, "respell_verify_margin"),
        ({"PARLEY_FBANK": "torchaudio"}, "fbank backend 'torchaudio' unknown"),
        ({"PARLEY_SEARCH": "fast"}, "search = 'fast': must be one of auto, greedy, beam"),
        ({"PARLEY_BEAM": "0"}, "beam = 0: must be 1-16"),
        ({"PARLEY_SETTLE_MS": "-40"}, "settle_ms = -40.0: must be >= 0"),
    ],
)
def test_invalid_settings_are_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        parse([], env)


def test_invalid_flag_is_refused_by_argparse() -> None:
    with pytest.raises(SystemExit):
        parse(["--max-batch", "many"])


def test_uvicorn_kwargs(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    kw = Settings(port=0, ssl_certfile=cert, ssl_keyfile=key, max_message_bytes=4096).uvicorn_kwargs()
    assert kw["port"] == 0 and kw["ssl_certfile"] == str(cert) and kw["ws_max_size"] == 8192
    assert "ssl_certfile" not in Settings().uvicorn_kwargs()


def test_serve_reports_bad_settings(tmp_path: Path, monkeypatch, capsys) -> None:
    from server.serve import main

    monkeypatch.setenv("PARLEY_MAX_BATCH", "0")
    with pytest.raises(SystemExit) as e:
        main(["--bundles", str(tmp_path)])
    assert e.value.code == 2 and "max_batch" in capsys.readouterr().err
    monkeypatch.delenv("PARLEY_MAX_BATCH")
    assert main(["--bundles", str(tmp_path)]) == 2
    assert "no model yet" in capsys.readouterr().err


def test_the_respelling_check_s_settings_reach_each_stream_s_respeller() -> None:
    from server.engine import EngineConfig

    s = parse(["--respell-verify-margin", "3"], {"PARLEY_RESPELL_VERIFY_THRESHOLD": "0.6"})
    limits = EngineConfig.from_settings(s).hotwords
    assert (limits.respell_verify_threshold, limits.respell_verify_margin) == (0.6, 3.0)
    assert parse([]).respell_verify_threshold < parse([]).respell_threshold  # the check is on by default


def test_the_fbank_setting_reaches_each_stream_s_frontend() -> None:
    """`--fbank kaldi-native-fbank`: the engine config carries it, and a Frontend made with it cuts chunks whose
    frames (computed a batch at a time) are kaldi-native-fbank's for the whole stream, to the bit."""
    import numpy as np

    from parley.features import FbankConfig, KnfLogMel, compute_fbank
    from server.bundle import EncoderSpec
    from server.engine import EngineConfig
    from server.frontend import Frontend, compute_features

    assert parse([]).fbank == "numpy"
    assert EngineConfig.from_settings(parse(["--fbank", "kaldi-native-fbank"])).fbank == "kaldi-native-fbank"
    assert EngineConfig.from_settings(parse([], {"PARLEY_FBANK": "Kaldi-Native-Fbank"})).fbank == "kaldi-native-fbank"
    spec = EncoderSpec(1, 0, 1, 1, window=20, shift=16, chunk=4, subsampling=4, joiner_dim=1, out_dim=1, chunk_ms=160,
                       history_ms=0, features=FbankConfig())  # fmt: skip
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    frontend = Frontend(spec, 16000, "kaldi-native-fbank")
    assert isinstance(frontend._fbank.logmel, KnfLogMel)
    frontend.accept(x)
    chunks = []
    while (c := frontend.pop_chunk()) is not None:
        chunks.append(c)
    compute_features(chunks)
    want = compute_fbank(x, 16000, backend="kaldi-native-fbank")
    assert len(chunks) > 3
    for i, c in enumerate(chunks):
        assert np.array_equal(c.x, want[i * spec.shift : i * spec.shift + spec.window])


def test_a_keys_file_turns_auth_on_however_the_settings_are_made(tmp_path: Path) -> None:
    """`Settings(api_keys_file=...)` (not only the flags and environment) reads the file: a server given a keys
    file never runs open; `dataclasses.replace` reads it again without doubling the keys."""
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nk1\n\n  k2  \n")
    s = Settings(api_keys_file=keys)
    assert s.api_keys == ("k1", "k2") and s.auth_required
    assert Settings(api_keys=("k0", "k2"), api_keys_file=str(keys)).api_keys == ("k0", "k2", "k1")
    assert dataclasses.replace(s, port=9000).api_keys == ("k1", "k2")
    assert parse(["--api-keys-file", str(keys)]) == s
    keys.write_text("# nobody yet\n")
    with pytest.raises(ValueError, match=r"api_keys_file .*: no keys in it"):
        Settings(api_keys_file=keys)


def test_settle_reaches_the_engines_recognizer() -> None:
    """`--settle-ms` (PARLEY_SETTLE_MS) goes into the engine's config, whose recognizer gives it to every stream."""
    from server.engine import EngineConfig

    assert EngineConfig.from_settings(parse(["--settle-ms", "640"])).settle_ms == 640.0
    assert EngineConfig.from_settings(parse([], {"PARLEY_SETTLE_MS": "320"})).settle_ms == 320.0
