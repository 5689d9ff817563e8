"""The server-wide hotwords file (`--hotwords-file`): read once with clear errors, given to every beam-search
stream (beam becomes the default search), alongside a stream's own hotwords."""

from pathlib import Path

import pytest

from server.bundle import load_bundle
from server.engine import EngineConfig
from server.plan import Adaptation, HeadPlan, InvalidOptionError, Planner
from server.settings import Settings, read_hotwords
from server.transducer import StreamingTransducer

ROOT = Path(__file__).resolve().parents[1]


def test_the_file_is_read_with_boosts_comments_and_clear_errors(tmp_path: Path) -> None:
    f = tmp_path / "hotwords.txt"
    f.write_text("# names\nkowalczyk\nzentrix labs\t4\n\n  \nparley\t0.5\n")
    assert read_hotwords(f) == (("kowalczyk", None), ("zentrix labs", 4.0), ("parley", 0.5))
    s = Settings(hotwords_file=f)
    assert (
        s.server_hotwords() == read_hotwords(f) and EngineConfig.from_settings(s).hotwords.server == s.server_hotwords()
    )
    f.write_text("fine\nbad one\t25\n")
    with pytest.raises(ValueError, match=r"line 2: boost '25'"):
        Settings(hotwords_file=f)
    with pytest.raises(ValueError, match=r"hotwords_file.*no such file"):
        Settings(hotwords_file=tmp_path / "missing.txt")
    assert Settings().server_hotwords() == ()


def test_a_json_file_holds_hotwords_as_a_start_message_gives_them(tmp_path: Path) -> None:
    """What `parley hotwords learn` writes: a list of strings or {phrase, boost, sounds_like} objects."""
    f = tmp_path / "names.json"
    f.write_text('["kowalczyk", {"phrase": "lombardi", "boost": 3, "sounds_like": ["lambary", "long bary"]}]')
    s = Settings(hotwords_file=f)
    assert s.server_hotwords() == (("kowalczyk", None), ("lombardi", 3))
    assert s.server_sounds_like() == (("lombardi", ("lambary", "long bary")),)
    assert EngineConfig.from_settings(s).hotwords.server_sounds_like == s.server_sounds_like()
    text = tmp_path / "names.txt"
    text.write_text("lombardi\n")
    assert Settings(hotwords_file=text).server_sounds_like() == ()
    for bad, why in (
        ('{"phrase": "x"}', "a list"),
        ('[{"phrase": "x", "sounds_like": "lambary"}]', "sounds_like"),
        ('[{"phrase": "x", "sound_like": []}]', "hotwords"),
        ("[1, 2", "hotwords_file"),
    ):
        f.write_text(bad)
        with pytest.raises(ValueError, match=why):
            Settings(hotwords_file=f)


@pytest.fixture(scope="module")
def planner_parts():
    bundle = load_bundle(ROOT / "bundles" / "en-small", providers="cpu", threads=1)
    return bundle, StreamingTransducer(bundle)


def test_every_beam_stream_gets_the_server_s_hotwords(planner_parts) -> None:
    bundle, model = planner_parts
    server = (("kowalczyk", None), ("zentrix labs", 4.0))
    planner = Planner(bundle, model, EngineConfig(server_hotwords=server).hotwords)
    assert planner.search_for(None, None) == "beam", "beam by default where the server has hotwords"
    assert planner.search_for("greedy", None) == "greedy", "a stream may still ask for greedy (and gets none)"
    plain = Planner(bundle, model).search_for(None, None)
    assert plain == "greedy"
    graph, fusion, _ = planner.adapt(HeadPlan(), Adaptation())[0]
    assert graph is not None and fusion is None
    both, _, _ = planner.adapt(HeadPlan(), Adaptation((("moreno", 2.0),)))[0]
    assert both is not None and len(both._next) > len(graph._next), "the stream's own hotwords are added"
    # whole words: "moreno" then a piece that glues onto the word ("morenos" is no "moreno") gets its bonus back
    sp = bundle.heads[0].sp
    moreno, glued = sp.encode("moreno"), sp.encode("morenos")
    assert glued[: len(moreno)] == moreno, "the test needs 'morenos' to begin with the pieces of 'moreno'"
    assert both.score(moreno) > 0 and both.score(glued) < both.score(moreno)
    # the server's list does not count against a stream's limit
    small = Planner(bundle, model, EngineConfig(server_hotwords=server, max_hotwords=1).hotwords)
    assert small.adapt(HeadPlan(), Adaptation((("moreno", None),)))[0][0] is not None
    with pytest.raises(InvalidOptionError, match="at most 1 per stream"):
        small.adapt(HeadPlan(), Adaptation((("moreno", None), ("pemberton", None))))
